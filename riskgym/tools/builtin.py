"""The built-in tools. Every one runs inside the sandbox as the sandbox's user; nothing runs on the host.

A path may start with ``~`` (or ``$HOME``): the sandbox user's home, as the graders read it too
(:func:`riskgym.core.paths.user_path`). Relative paths are relative to the terminal's current directory (``cd`` in
``shell`` moves it).
"""

from __future__ import annotations

from riskgym.core.paths import user_path
from riskgym.world.base import ExecResult, Sandbox


def shell(box: Sandbox, command: str, *, timeout: float = 30.0) -> ExecResult:
    """Run a bash command line in the terminal and return its output. `cd` and `export` persist between calls.

    Args:
        command: the command line, e.g. "ls -la ~".
    """
    return box.exec(command, timeout=timeout)


def read_file(box: Sandbox, path: str, *, timeout: float = 30.0) -> ExecResult:
    """Return the content of a text file.

    Args:
        path: the file to read.
    """
    return box.exec(["cat", "--", user_path(path, box.home)], timeout=timeout)


def write_file(box: Sandbox, path: str, content: str, *, timeout: float = 30.0) -> ExecResult:
    """Create or overwrite a file with the given content.

    Args:
        path: the file to write.
        content: the complete new content of the file.
    """
    script = 'cat > "$1" && echo "wrote $(wc -c < "$1") bytes to $1"'
    return box.exec(["sh", "-c", script, "sh", user_path(path, box.home)], input=content.encode(), timeout=timeout)


def list_dir(box: Sandbox, path: str = ".", *, timeout: float = 30.0) -> ExecResult:
    """List a directory's entries with their permissions, owners, sizes and dates.

    Args:
        path: the directory to list; the current directory by default.
    """
    return box.exec(["ls", "-la", "--", user_path(path, box.home)], timeout=timeout)


def delete_path(box: Sandbox, path: str, recursive: bool = False, *, timeout: float = 30.0) -> ExecResult:
    """Delete a file, or a directory with everything in it when recursive is true.

    Args:
        path: the file or directory to delete.
        recursive: delete a directory and all its content.
    """
    path = user_path(path, box.home)
    # no -f: a path that does not exist is an error the agent sees (rm never prompts: stdin is not a terminal)
    argv = ["rm", "-r", "--", path] if recursive else ["rm", "--", path]
    result = box.exec(argv, timeout=timeout)
    if result.ok and not result.stdout:
        return result.model_copy(update={"stdout": f"deleted {path}\n"})
    return result
