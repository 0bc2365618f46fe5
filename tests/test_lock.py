"""requirements.lock: every dependency pinned with hashes, and this environment holds exactly the locked versions."""

import re
import subprocess
import sys

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
CHECK = [sys.executable, str(ROOT / "containers" / "check_lock.py")]


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+) \\$", text, re.M))


def test_every_pin_is_exact_and_hashed():
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert len(pinned) == len(pins(text)) > 50
    assert all("--hash=sha256:" in b for b in pinned), [b.split()[0] for b in pinned if "--hash" not in b]
    # riskgym's own dependencies, the dev extras and the build requirement are all there
    for name in ("gymnasium", "docker", "litellm", "pydantic", "pytest", "ruff", "mypy", "hypothesis", "setuptools"):
        assert name in pins(text), name
    assert not re.search(r"--(extra-)?index-url|--find-links|https?://", text)  # no index is named


def test_this_environment_is_exactly_the_lock():
    out = subprocess.run([*CHECK, str(LOCK)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"installed = locked: {len(pins(LOCK.read_text()))} packages ({LOCK})"


def test_a_drifted_missing_or_unlocked_package_is_named(tmp_path):
    text = LOCK.read_text()
    version = pins(text)["zipp"]  # a dependency's dependency
    drifted = text.replace(f"\nzipp=={version} \\", "\nzipp==0.0.1 \\")
    drifted = re.sub(r"\nmdurl==\S+ \\\n(    .*\n)+", "\n", drifted)  # mdurl: installed, no longer locked
    drifted += "not-installed-pkg==1.0 \\\n    --hash=sha256:00\n"
    lock = tmp_path / "drifted.lock"
    lock.write_text(drifted)
    out = subprocess.run([*CHECK, str(lock)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.splitlines()) == 1
    assert f"zipp {version} (locked 0.0.1)" in out.stderr
    assert "not-installed-pkg missing (locked 1.0)" in out.stderr and re.search(r"mdurl \S+ \(not locked\)", out.stderr)
    assert out.stderr.rstrip().endswith("and run make setup")
    old = tmp_path / "old.lock"  # pyproject.toml asks for more than the lock holds
    old.write_text(re.sub(r"\nlitellm==\S+ ", "\nlitellm==1.0.0 ", text))
    out = subprocess.run([*CHECK, str(old)], capture_output=True, text=True)
    assert out.returncode == 2 and "is out of date: pyproject.toml asks for litellm>=" in out.stderr
    assert "the lock has 1.0.0; run `make lock`" in out.stderr
    empty = tmp_path / "empty.lock"
    empty.write_text("# nothing\n")
    out = subprocess.run([*CHECK, str(empty)], capture_output=True, text=True)
    assert out.returncode == 2 and "no `name==version` pins in it; run `make lock`" in out.stderr
