"""Every Sandbox implementation passes the same conformance suite: the real DockerSandbox and the in-memory fake."""

import pytest

from riskgym.tools.conformance import CHECKS, NonconformanceError, run_conformance, self_check
from riskgym.world.fake import FakeSandbox
from tests.test_cli import riskgym


@pytest.mark.parametrize("kind", ["fake", pytest.param("docker", marks=pytest.mark.docker)])
def test_the_suite_passes(kind, request):
    if kind == "docker":
        request.getfixturevalue("docker_ready")
    results = self_check(kind)
    assert len(results) == 2 * len(CHECKS)  # in place, then with a writable root
    assert [(name, why) for name, why in results if why is not None] == []


def test_the_suite_fails_a_sandbox_that_breaks_the_contract():
    class Forgetful(FakeSandbox):  # cd and export do not persist, as if every command got a new shell
        def exec(self, cmd, **kw):
            cwd, env = self.cwd, dict(self.vars)
            try:
                return super().exec(cmd, **kw)
            finally:
                self.cwd, self.vars = cwd, env

    box = Forgetful()
    box.start()
    failed = dict((name, why) for name, why in run_conformance(box) if why is not None)
    assert list(failed) == ["terminal_keeps_state"] and "/tmp" not in failed["terminal_keeps_state"].split(": ")[0]
    with pytest.raises(NonconformanceError):
        CHECKS[2](box)


def test_self_check_from_the_command_line():
    out = riskgym("sandbox", "self-check", "fake")
    assert out.returncode == 0, out.stderr
    assert f"fake: {2 * len(CHECKS)} of {2 * len(CHECKS)} conformance checks passed" in out.stdout
