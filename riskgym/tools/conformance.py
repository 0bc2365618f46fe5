"""The conformance suite every Sandbox implementation must pass (``riskgym sandbox self-check [KIND]``).

Each check is a function of a started sandbox that raises :class:`NonconformanceError` saying what differs from the
contract in :class:`riskgym.world.base.Sandbox`. They share one sandbox (each works under its own path) and the
last one resets it. ``tests/world/test_conformance.py`` runs the suite on DockerSandbox and on FakeSandbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from riskgym.tools.runtime import TOOLS
from riskgym.world.base import Sandbox

HOME = "/home/agent"
ROOT = f"{HOME}/conformance"


class NonconformanceError(AssertionError):
    """A sandbox did something the contract does not allow."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise NonconformanceError(what)


def argv_command(box: Sandbox) -> None:
    """An argv runs as it is; its output and exit status come back."""
    r = box.exec(["echo", "hello world"])
    _expect(r.ok and r.stdout == "hello world\n" and not r.timed_out, f"echo gave {r!r}")


def failure_is_a_result(box: Sandbox) -> None:
    """A command that fails is a result with its exit status and stderr, never an exception."""
    r = box.exec(["cat", f"{ROOT}/missing"])
    _expect(not r.ok and "No such file" in r.stderr, f"cat of a missing file gave {r!r}")
    r = box.exec("no-such-command-here")
    _expect(r.exit_code == 127 and "not found" in r.stderr, f"an unknown command gave {r!r}")


def terminal_keeps_state(box: Sandbox) -> None:
    """String commands share one terminal: ``cd`` and ``export`` persist; argv commands do not move it."""
    box.exec("cd /tmp && export RISKGYM_CONFORMANCE=42")
    r = box.exec("pwd; echo $RISKGYM_CONFORMANCE")
    box.exec("cd ~")
    _expect(r.stdout == "/tmp\n42\n", f"after cd and export the terminal said {r.stdout!r}")


def stdin_is_fed(box: Sandbox) -> None:
    """``input`` reaches the command's standard input."""
    r = box.exec(["cat"], input=b"from stdin\n")
    _expect(r.stdout == "from stdin\n", f"cat of stdin gave {r.stdout!r}")


def runs_as_the_agent(box: Sandbox) -> None:
    """Commands run as the non-root user ``agent`` in its home; ``user="root"`` runs as root."""
    me = box.exec(["whoami"]).stdout.strip()
    root = box.exec(["id", "-u"], user="root").stdout.strip()
    _expect(me == "agent" and box.home == HOME and root == "0", f"whoami {me!r}, home {box.home!r}, root's id {root!r}")


def files_with_owner_and_mode(box: Sandbox) -> None:
    """put_files sets content, mode and owner, parents included; the agent cannot read root's private file."""
    box.put_files([(f"{ROOT}/mine.txt", b"mine\n", 0o640, 1000)])
    mine = box.snapshot([ROOT]).files.get(f"{ROOT}/mine.txt")
    _expect(mine is not None and mine.mode == 0o640 and mine.uid == 1000 and mine.text == "mine\n",
            f"mine.txt is {mine!r}")
    made = box.exec(["sh", "-c", "echo secret > /tmp/conformance-secret && chmod 600 /tmp/conformance-secret"],
                    user="root")
    secret = box.snapshot(["/tmp/conformance-secret"]).files.get("/tmp/conformance-secret")
    _expect(made.ok and secret is not None and secret.mode == 0o600 and secret.uid == 0,
            f"root's file: {made!r}, {secret!r}")
    r = box.exec(["cat", "/tmp/conformance-secret"])
    _expect(not r.ok and "Permission denied" in r.stderr, f"the agent read root's 0600 file: {r!r}")


def read_and_write(box: Sandbox) -> None:
    """write_file and read_file as the agent; a missing file is FileNotFoundError."""
    box.write_file(f"{ROOT}/w.txt", b"written\n")
    _expect(box.read_file(f"{ROOT}/w.txt") == b"written\n", "read_file did not return what write_file wrote")
    try:
        box.read_file(f"{ROOT}/nothing")
    except FileNotFoundError:
        return
    raise NonconformanceError("read_file of a missing file did not raise FileNotFoundError")


def snapshot_sees_changes(box: Sandbox) -> None:
    """A snapshot records what commands changed: a file created, one deleted, its hash and text."""
    box.exec(f"echo new > {ROOT}/created.txt && rm {ROOT}/w.txt")
    files = box.snapshot([ROOT]).files
    created = files.get(f"{ROOT}/created.txt")
    _expect(created is not None and created.text == "new\n" and created.sha256 is not None,
            f"created.txt in the snapshot: {created!r}")
    _expect(f"{ROOT}/w.txt" not in files, "a deleted file is still in the snapshot")


def builtin_tools(box: Sandbox) -> None:
    """The built-in tools run on it: write_file, read_file, list_dir, and delete_path of a missing path fails."""
    wrote = TOOLS["write_file"](box, {"path": "~/conformance/t.txt", "content": "tool\n"})
    read = TOOLS["read_file"](box, {"path": "~/conformance/t.txt"})
    listed = TOOLS["list_dir"](box, {"path": "~/conformance"})
    missing = TOOLS["delete_path"](box, {"path": "~/conformance/none"})
    _expect(wrote.exec is not None and wrote.exec.exit_code == 0 and "wrote 5 bytes" in wrote.text(),
            f"write_file said {wrote.text()!r}")
    _expect(read.text() == "tool", f"read_file said {read.text()!r}")
    _expect("t.txt" in listed.text(), f"list_dir said {listed.text()!r}")
    _expect(missing.exec is not None and missing.exec.exit_code != 0, f"delete_path of a missing path: {missing!r}")


def timeout_kills(box: Sandbox) -> None:
    """A command past its timeout is cut: timed_out, exit 124, and the call returns soon after the timeout."""
    t0 = time.monotonic()
    r = box.exec("sleep 5", timeout=0.5)
    took = time.monotonic() - t0
    _expect(r.timed_out and r.exit_code == 124 and took < 3, f"sleep 5 with a 0.5 s timeout: {r!r} after {took:.1f} s")
    _expect(box.exec(["true"]).ok, "the sandbox did not answer after a time-out")


def reset_in_place(box: Sandbox) -> None:
    """When it can be reset in place, a reset empties the home and gives a new terminal in it."""
    if not box.can_reset:
        return
    box.exec("cd /tmp")
    box.reset()
    files = box.snapshot([HOME]).files
    _expect(not any(p.startswith(ROOT) for p in files), "files written before the reset are still there")
    _expect(box.exec("pwd").stdout == f"{HOME}\n", "the terminal after a reset is not in the home")


CHECKS: list[Callable[[Sandbox], None]] = [
    argv_command, failure_is_a_result, terminal_keeps_state, stdin_is_fed, runs_as_the_agent,
    files_with_owner_and_mode, read_and_write, snapshot_sees_changes, builtin_tools, timeout_kills, reset_in_place]
"""The suite, in order (the last one resets the sandbox)."""


def run_conformance(box: Sandbox) -> list[tuple[str, str | None]]:
    """Run every check on a started ``box``; (name, None) for a pass, (name, what differs) for a failure."""
    results: list[tuple[str, str | None]] = []
    for check in CHECKS:
        try:
            check(box)
        except NonconformanceError as exc:
            results.append((check.__name__, str(exc)))
        except Exception as exc:
            results.append((check.__name__, f"raised {type(exc).__name__}: {exc}"))
        else:
            results.append((check.__name__, None))
    return results


def self_check(kind: str, labels: dict[str, Any] | None = None) -> list[tuple[str, str | None]]:
    """Run the suite on a sandbox of ``kind`` (a name in ``SANDBOXES``): reset in place, then with a writable root.

    Those are the two ways a scenario's box is made; each is started for the suite and removed after it.
    """
    from riskgym.core.scenario import SandboxSpec
    from riskgym.world.kind import sandbox_kind

    results: list[tuple[str, str | None]] = []
    for mode in ("in-place", "recreate"):
        box = sandbox_kind(kind).factory(SandboxSpec(reset=mode), {"riskgym.run": "self-check", **(labels or {})})
        box.start()
        try:
            results += [(f"{name} ({mode})", why) for name, why in run_conformance(box)]
        finally:
            box.close()
    return results
