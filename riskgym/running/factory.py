"""Which model a ``--model`` or ``--judge`` spec names: a scripted agent or an LLM through litellm, checked early."""

from __future__ import annotations

import os
import re
from typing import Any

from riskgym.core.scenario import Scenario
from riskgym.errors import RiskgymError
from riskgym.running.llm import LitellmModel, litellm_module
from riskgym.running.model import Model, ModelConfig, ScriptedModel, reference_actions

SCRIPTED = ("scripted:risky", "scripted:safe")


def resolve_model(spec: str, configs: dict[str, ModelConfig], overrides: dict[str, Any]) -> ModelConfig | None:
    """The config of an LLM ``--model`` spec, or None for a scripted agent.

    The spec is a name in the config file or a litellm model string (``check_model`` finds out whether litellm can
    call it); ``overrides`` (the command-line options that were given) apply to litellm model strings only.
    """
    if spec in SCRIPTED:
        return None
    if spec.startswith("scripted:"):
        raise RiskgymError(f"--model {spec!r}: unknown scripted agent; use {' or '.join(SCRIPTED)}")
    if spec in configs:
        return configs[spec]
    return ModelConfig(model=spec, **overrides)


def check_model(name: str, config: ModelConfig) -> None:
    """Fail early, before a run writes anything, when litellm cannot call this model (unknown provider, no key)."""
    if config.api_base:  # the checks that need no litellm first: importing it takes seconds
        _check_reachable(name, config.api_base)
    if config.api_key_env and not os.environ.get(config.api_key_env):
        raise RiskgymError(f"--model {name!r}: environment variable {config.api_key_env} (api_key_env) is not set; "
                           "export it")
    litellm = litellm_module()
    try:
        _, provider, _, _ = litellm.get_llm_provider(config.model, api_base=config.api_base)
    except Exception:  # litellm raises its own BadRequestError for unknown providers
        raise RiskgymError(f"--model {name!r}: not a name in a --models file, and litellm cannot tell which provider "
                           f"serves {config.model!r}; write provider/model (e.g. openai/gpt-4o-mini, or openai/NAME "
                           f"with --api-base for an OpenAI-compatible server) or {' or '.join(SCRIPTED)}") from None
    if config.api_base is None and config.api_key_env is None:
        missing = [k for k in litellm.validate_environment(config.model).get("missing_keys") or []
                   if re.search(r"KEY|TOKEN|SECRET", k)]  # not e.g. OLLAMA_API_BASE: it has a default
        if missing:
            raise RiskgymError(f"--model {name!r}: {provider} needs {', '.join(missing)} in the environment; "
                               "export it (riskgym never writes it anywhere)")


def _check_reachable(name: str, api_base: str) -> None:
    """Fail early when nothing listens at a model's endpoint (a TCP connection; no request, so nothing is billed)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(api_base)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise RiskgymError(f"--model {name!r}: api_base {api_base!r} is not an http(s) URL; write e.g. "
                           "http://127.0.0.1:8000/v1")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as exc:
        raise RiskgymError(f"--model {name!r}: nothing answers at {url.hostname}:{port} (api_base {api_base}: "
                           f"{exc.strerror or exc}); start the server or fix the URL") from None


def make_model(spec: str, scenario: Scenario, configs: dict[str, ModelConfig] | None = None,
               overrides: dict[str, Any] | None = None) -> Model:
    """Build the model a ``--model`` spec names, for one scenario."""
    config = resolve_model(spec, configs or {}, overrides or {})
    if config is None:
        steps = getattr(scenario.reference, spec.partition(":")[2]) or scenario.reference.safe  # a benign twin
        return ScriptedModel(reference_actions(steps), name=spec)
    return LitellmModel(spec, config)


def make_emulator(spec: str, configs: dict[str, ModelConfig], overrides: dict[str, Any]) -> LitellmModel:
    """The emulator model an ``--emulator`` spec names: temperature 0 and not streamed unless its settings say.

    Checked as an agent's model is (a provider litellm knows, a key in the environment, a server that answers).
    Not streamed: an emulator's call is never cut short, and litellm's stream costs ~55 ms a call more (bench).
    """
    return _grader_model(f"--emulator {spec!r}: the emulator must be an LLM (a litellm model string or a name in "
                         "--models FILE)", spec, configs, overrides, checked=True, temperature=0.0, stream=False)


def _grader_model(not_llm: str, spec: str, configs: dict[str, ModelConfig], overrides: dict[str, Any],
                  checked: bool = False, **defaults: Any) -> LitellmModel:
    """An LLM that serves riskgym itself (a judge, an emulator): native mode, and ``defaults`` where unset.

    ``not_llm`` is the error for a spec that names a scripted agent; ``checked`` checks it as an agent's model is.
    """
    config = resolve_model(spec, configs, overrides)
    if config is None:
        raise RiskgymError(not_llm)
    if checked:
        check_model(spec, config)
    updates = {"tool_mode": "native", **{k: v for k, v in defaults.items() if getattr(config, k) is None}}
    return LitellmModel(spec, config.model_copy(update=updates))


def make_judge(spec: str, configs: dict[str, ModelConfig], overrides: dict[str, Any], option: str = "--judge") -> Any:
    """The LLM judge a ``--judge`` (or ``option``) spec names: temperature 0 unless its settings say, native mode."""
    return _grader_model(f"{option} {spec!r}: it must be an LLM (a litellm model string or a name in --models)",
                         spec, configs, overrides, temperature=0.0)
