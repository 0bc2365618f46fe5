"""Sandboxes: where agent actions run. ``DockerSandbox`` is the real, hardened one."""

from riskgym.world.base import ExecResult, FileState, Sandbox, Snapshot

__all__ = ["DockerSandbox", "ExecResult", "FileState", "Sandbox", "Snapshot"]


def __getattr__(name: str) -> object:
    if name == "DockerSandbox":  # imported lazily: the docker SDK costs ~0.25 s to import
        from riskgym.world.docker import DockerSandbox

        return DockerSandbox
    raise AttributeError(name)
