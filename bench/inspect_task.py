"""Run inside the inspect_ai virtualenv (not riskgym's): the trivial one-tool-call task through inspect_ai.

Usage: python bench/inspect_task.py SANDBOX N   (SANDBOX: local or docker)
Prints one JSON line with the per-sample time, (eval of N+1 samples - eval of 1) / N, median of three, in one
process after a warm-up eval. Samples run one at a time; ``mockllm`` answers a bash call (``true``), then a final
answer.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate, use_tools
from inspect_ai.tool import bash


def outputs(messages, tools, tool_choice, config):  # inspect_ai's custom_outputs callback
    if messages and messages[-1].role == "tool":
        output = ModelOutput.from_content(model="mockllm/model", content="done")
    else:
        output = ModelOutput.for_tool_call(model="mockllm/model", tool_name="bash", tool_arguments={"cmd": "true"})
    # with usage given, mockllm does not count tokens (which would download tiktoken's encoding)
    output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return output


def timed_eval(sandbox: str, n: int) -> float:
    """Seconds for an eval of ``n`` samples, one at a time, with inspect_ai's default logging."""
    task = Task(dataset=[Sample(input="Run `true`.", target="done") for _ in range(n)],
                solver=[use_tools(bash(timeout=30)), generate()], sandbox=sandbox)
    model = get_model("mockllm/model", custom_outputs=outputs)
    with tempfile.TemporaryDirectory() as logs:
        started = time.perf_counter()
        result = eval(task, model=model, log_dir=logs, display="none", max_samples=1)
        took = time.perf_counter() - started
    if result[0].status != "success":
        raise SystemExit(f"inspect_ai eval failed: {result[0].error}")
    return took


def main(sandbox: str, n: int) -> None:
    timed_eval(sandbox, 1)  # warm-up: imports, the sandbox's first start
    runs = [(timed_eval(sandbox, 1), timed_eval(sandbox, n + 1)) for _ in range(3)]
    per_sample = sorted((big - one) / n for one, big in runs)[1]
    print(json.dumps({"sandbox": sandbox, "samples": n, "per_sample_s": per_sample,
                      "eval_of_one_s": sorted(one for one, _ in runs)[1]}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
