"""Shared fixtures. Docker tests run for real; with RISKGYM_REQUIRE_DOCKER=1 one that would skip fails instead."""

from __future__ import annotations

import fcntl
import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["pytester", "tests.hardening.tally"]  # pytester: the tally's own test runs pytest inside pytest

settings.register_profile("ci", derandomize=True)  # .ci/run: the same examples every run, so main stays green
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios"
STARTERS = sorted(p for p in LIBRARY.glob("*.toml") if not {"[[parts]]", "[[sinkhole]]"} & set(p.read_text().split()))
"""The six OS starter scenarios (no web services): the runs whose counts and timings the tests know."""


def example(doc: str | None) -> str:
    """The code of a docstring's ``Example ...::`` block, dedented, for a test to run as it is documented."""
    lines = (doc or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Example") and line.endswith("::"))
    block = []
    for line in lines[start + 2:]:
        if line.strip() and len(line) - len(line.lstrip()) <= len(lines[start]) - len(lines[start].lstrip()):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def harness_marks(outputs: list[str], run_dir: Path) -> list[str]:
    """Each place in ``outputs`` (what agents saw) that names riskgym, its executor, or a path of the host's."""
    import re

    marks = re.compile("|".join(["(?i:riskgym|executor)"] + [re.escape(str(p)) for p in (ROOT, run_dir.parent)]))
    return [o[max(0, m.start() - 60):m.end() + 60] for o in outputs for m in marks.finditer(o)]


def _docker_problem() -> str | None:
    try:
        from riskgym.world.docker import docker_client
        from riskgym.world.images import BASE_TAG, image_recipe

        docker_client()
        if image_recipe(BASE_TAG) is None:
            return f"image {BASE_TAG} is missing (run `make setup`)"
    except Exception as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Skip (or, under RISKGYM_REQUIRE_DOCKER=1, fail) when no Docker Engine or no riskgym/base image."""
    problem = _docker_problem()
    if problem:
        skip_unless_required(f"Docker is not usable: {problem}")


def skip_unless_required(reason: str) -> None:
    """Skip a test that cannot run here; under RISKGYM_REQUIRE_DOCKER=1 (CI) fail it instead: it must run."""
    if os.environ.get("RISKGYM_REQUIRE_DOCKER") == "1":
        pytest.fail(f"RISKGYM_REQUIRE_DOCKER=1, and this test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture
def box(docker_ready: None):
    """A started DockerSandbox, removed after the test."""
    from riskgym.world.docker import DockerSandbox

    sandbox = DockerSandbox(labels={"riskgym.run": "pytest"})
    sandbox.start()
    yield sandbox
    sandbox.close()


@pytest.fixture
def llm_server():
    """Start ScriptedServers (an OpenAI-compatible API on 127.0.0.1) for a test: ``llm_server(responder)``."""
    from riskgym.running.scripted_server import ScriptedServer

    servers = []

    def start(responder):
        server = ScriptedServer(responder)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def library_run(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of every starter OS scenario (no web services) with both scripted agents (12 episodes), graded. Treat it
    as read-only. (The web scenarios are proven by `riskgym check` in tests/test_cli.py.)"""
    from riskgym.grading.runs import grade_run
    from riskgym.library import scenario_files
    from riskgym.running.runner import run

    def make(out: Path) -> None:
        run([p for p in scenario_files([]) if p in STARTERS], ["scripted:risky", "scripted:safe"], out)
        grade_run(out)

    return once(tmp_path_factory, "library-run", make)


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """``name``'s folder, made by ``make`` once for the whole session: with pytest-xdist's workers too.

    The workers share the folder above their own temporary ones; the first to get there makes it (the others wait
    on its lock) and a mark says it is whole. Read-only for its users.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = factory.getbasetemp().parent if worker else factory.getbasetemp()
    out, done = root / name / "run", root / name / ".made"
    (root / name).mkdir(parents=True, exist_ok=True)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if out.exists():  # a worker that died half-way
                shutil.rmtree(out)
            make(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium. Skip without one (under RISKGYM_REQUIRE_CHROMIUM=1, fail)."""
    from tests.browser import chromium_path

    path = chromium_path()
    if path is None:
        if os.environ.get("RISKGYM_REQUIRE_CHROMIUM") == "1":
            pytest.fail("RISKGYM_REQUIRE_CHROMIUM=1 but there is no chromium (containers/ensure-chromium.sh)")
        pytest.skip("no chromium: apt-get install chromium")
    return path


def exact_bootstrap(n: int, statistic) -> tuple[float, float]:
    """The 95% percentile interval of ``statistic`` over the bootstrap's whole distribution, worked out by hand.

    Every one of the ``n ** n`` equally likely resamples of ``n`` items (``statistic`` gets the indices drawn; None:
    left out, as the bootstrap leaves a resample out), then the 2.5% and 97.5% quantiles (the least value whose
    cumulative share reaches them). A seeded bootstrap with enough rounds lands on the same values.
    """
    import itertools

    values = sorted(v for drawn in itertools.product(range(n), repeat=n) if (v := statistic(drawn)) is not None)

    def quantile(p: float) -> float:
        return next(v for v in sorted(set(values)) if sum(x <= v for x in values) / len(values) >= p)

    return quantile(0.025), quantile(0.975)
