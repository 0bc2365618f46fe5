"""Build the sandbox images with no image registry: debootstrap -> ``docker import`` -> Dockerfile.

The recipe (suite, package list, Dockerfile) is hashed; an image whose ``riskgym.recipe`` label carries the
same hash is up to date and is not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from riskgym.core.desktop import IMAGE as DESKTOP_IMAGE
from riskgym.errors import SandboxError
from riskgym.world.docker import docker_client

PACKAGES = ["python3", "procps", "psmisc", "nano", "less", "file", "xz-utils", "bzip2", "strace", "curl",
            "python3-flask"]
"""Added to debootstrap's minbase (which has coreutils, findutils, grep, sed, tar, gzip already); python3-flask serves
the web services (:mod:`riskgym.world.services`), which run from this image too."""
BASE_TAG = "riskgym/base:latest"
DESKTOP_TAG = f"{DESKTOP_IMAGE}:latest"


def containers_dir() -> Path:
    """The folder of image build folders (``containers/`` at the repository root)."""
    path = Path(os.environ.get("RISKGYM_CONTAINERS", Path(__file__).resolve().parents[2] / "containers"))
    if not (path / "base" / "Dockerfile").is_file():
        raise SandboxError(f"{path}/base/Dockerfile not found: set RISKGYM_CONTAINERS to riskgym's containers/ folder")
    return path


def host_suite() -> str:
    """The host's Debian codename (overridable by RISKGYM_DEBIAN_SUITE), 'bookworm' if unknown."""
    if os.environ.get("RISKGYM_DEBIAN_SUITE"):
        return os.environ["RISKGYM_DEBIAN_SUITE"]
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "bookworm"
    match = re.search(r"^VERSION_CODENAME=(\w+)", text, re.M)
    return match.group(1) if match else "bookworm"


def host_mirror(suite: str, etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt is configured with on this host (overridable by RISKGYM_DEBIAN_MIRROR).

    Reads deb822 ``*.sources`` files and one-line ``sources.list`` entries; takes the first archive that
    serves ``suite`` itself (not ``suite-security`` or ``suite-updates``).
    """
    if os.environ.get("RISKGYM_DEBIAN_MIRROR"):
        return os.environ["RISKGYM_DEBIAN_MIRROR"]
    for file in sorted(etc.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", file.read_text()):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    for file in [etc / "sources.list", *sorted(etc.glob("sources.list.d/*.list"))]:
        if file.is_file():
            for line in file.read_text().splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if match and match.group(2) == suite:
                    return match.group(1)
    raise SandboxError(
        f"/etc/apt: no Debian mirror for suite {suite!r} is configured: set RISKGYM_DEBIAN_MIRROR=<mirror URL>"
    )


def recipe_hash(suite: str, base: str | None) -> str:
    """Hash of everything that decides the image's content."""
    dockerfile = (containers_dir() / "base" / "Dockerfile").read_text()
    blob = json.dumps({"suite": suite, "packages": PACKAGES, "base": base, "dockerfile": dockerfile})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def image_recipe(tag: str) -> str | None:
    """The recipe hash of an existing image, or None when the image does not exist."""
    import docker.errors

    try:
        return docker_client().images.get(tag).labels.get("riskgym.recipe", "")
    except docker.errors.ImageNotFound:
        return None


def build_base(*, from_image: str | None = None, force: bool = False, tag: str = BASE_TAG,
               say: Callable[[str], None] = print) -> str:
    """Build ``riskgym/base`` unless an image of the same recipe exists; return the image's tag.

    Args:
        from_image: build FROM this image (e.g. one from a registry the user can reach) and install the packages
            with apt inside it, instead of debootstrapping a root filesystem.
        force: rebuild even when the image is up to date.
        tag: the image's name.
        say: where progress lines go.
    """
    suite = host_suite()
    recipe = recipe_hash(suite, from_image)
    if not force and image_recipe(tag) == recipe:
        say(f"{tag} is up to date (recipe {recipe})")
        return tag
    if from_image is None:
        base = f"riskgym/rootfs:{recipe}"
        if image_recipe(base) is None:
            _debootstrap_import(suite, base, say)
        build_args = {"BASE": base, "PACKAGES": ""}
    else:
        build_args = {"BASE": from_image, "PACKAGES": " ".join(PACKAGES)}
    say(f"building {tag} from {build_args['BASE']}")
    _docker_build(containers_dir() / "base", tag, build_args, recipe, say)
    return tag


def build_desktop(*, force: bool = False, base: str = BASE_TAG, tag: str = DESKTOP_TAG,
                  say: Callable[[str], None] = print) -> str:
    """Build ``riskgym/desktop`` (Xvfb, a window manager, Chromium, a terminal ...) FROM ``base``.

    About a minute and 1.2 GB the first time (apt inside, through the host's network). See :func:`build_folder`.
    """
    return build_folder("desktop", force=force, base=base, tag=tag, say=say)


def image_folders() -> list[str]:
    """The image folders besides the base's (``containers/<name>/Dockerfile``, FROM the base): one a kind's image."""
    return sorted(p.parent.name for p in containers_dir().glob("*/Dockerfile") if p.parent.name != "base")


def build_folder(name: str, *, force: bool = False, base: str = BASE_TAG, tag: str = "",
                 say: Callable[[str], None] = print) -> str:
    """Build ``riskgym/<name>`` from ``containers/<name>/`` (a Dockerfile ``FROM`` the base image) unless up to date.

    Its recipe is the base image's recipe plus every file of the folder; an image of the same recipe is not rebuilt.
    """
    folder = containers_dir() / name
    tag = tag or f"riskgym/{name}:latest"
    base_recipe = image_recipe(base)
    if base_recipe is None:
        raise SandboxError(f"{base} does not exist: run `riskgym images build` first")
    files = {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}
    recipe = hashlib.sha256(json.dumps({"base": base_recipe, "files": files}).encode()).hexdigest()[:16]
    if not force and image_recipe(tag) == recipe:
        say(f"{tag} is up to date (recipe {recipe})")
        return tag
    say(f"building {tag} from {base} ({folder}/Dockerfile)")
    _docker_build(folder, tag, {"BASE": base}, recipe, say)
    return tag


def _docker_build(folder: Path, tag: str, build_args: dict[str, str], recipe: str,
                  say: Callable[[str], None]) -> None:
    api = docker_client().api
    for chunk in api.build(path=str(folder), tag=tag, buildargs=build_args, rm=True,
                           network_mode="host", labels={"riskgym.recipe": recipe}, decode=True):
        if "error" in chunk:
            raise SandboxError(f"building {tag} failed: {chunk['error'].strip()}")
        line = chunk.get("stream", "").strip()
        if line.startswith("Step "):
            say(f"  {line}")
    say(f"{tag} built (recipe {recipe})")


def _debootstrap_import(suite: str, tag: str, say: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed: `apt-get install debootstrap`, or build with --from IMAGE")
    if os.geteuid() != 0:
        raise SandboxError("debootstrap needs root: run `riskgym images build` as root, or build with --from IMAGE")
    mirror = host_mirror(suite)
    with tempfile.TemporaryDirectory(prefix="riskgym-rootfs-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        root = Path(tmp) / "root"
        say(f"debootstrap {suite} (minbase + {len(PACKAGES)} packages) from {mirror} ...")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(root), mirror]
        log = Path(tmp) / "debootstrap.log"
        returncode = _run_with_phases(cmd, log, say)
        if returncode != 0:
            tail = log.read_text()[-600:].strip().splitlines()
            raise SandboxError(f"debootstrap failed (exit {returncode}): {tail[-1] if tail else '?'}; "
                               "check the mirror or set RISKGYM_DEBIAN_MIRROR")
        say(f"importing the root filesystem as {tag}")
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        repo, _, version = tag.partition(":")
        docker_client().api.import_image_from_file(str(archive), repository=repo, tag=version,
                                                    changes=[f"LABEL riskgym.recipe={version}"])


def _run_with_phases(cmd: list[str], log: Path, say: Callable[[str], None]) -> int:
    """Run debootstrap, logging everything; say each phase (retrieving, extracting, ...) once, then the total.

    A phase is a verb of debootstrap's ``I: Retrieving ...`` lines; it alternates ``Retrieving`` and ``Validating``
    for every package, so a phase is said the first time it appears only, with the time since the start.
    """
    start, seen = time.monotonic(), set()
    with log.open("w") as out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            match = re.match(r"I: (\w+ing) ", line)
            if match and match.group(1).lower() not in seen:
                seen.add(match.group(1).lower())
                say(f"  debootstrap: {match.group(1).lower()} ... ({time.monotonic() - start:.0f} s)")
    say(f"  debootstrap: {'done' if proc.returncode == 0 else f'exit {proc.returncode}'} "
        f"in {time.monotonic() - start:.0f} s")
    return proc.returncode
