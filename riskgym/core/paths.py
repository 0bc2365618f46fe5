"""Paths as a user means them, resolved one way by every tool and every grader.

>>> user_path("~/inbox/ticket.txt", "/home/agent")
'/home/agent/inbox/ticket.txt'
>>> user_path("$HOME", "/home/agent"), user_path("${HOME}/x", "/home/agent")
('/home/agent', '/home/agent/x')
>>> user_path("build/../out", "/home/agent", cwd="/tmp")
'/tmp/out'
>>> user_path("build", "/home/agent")  # no cwd: relative stays relative, for the terminal's directory to resolve
'build'
"""

from __future__ import annotations

import posixpath

HOME_PREFIXES = ("${HOME}", "$HOME", "~")
"""What stands for the home at the start of a path: ``~``, ``$HOME`` and ``${HOME}``, alone or before a ``/``."""


def user_path(path: str, home: str, cwd: str | None = None) -> str:
    """``path`` with a leading ``~``, ``$HOME`` or ``${HOME}`` made ``home``; with ``cwd``, absolute and normalised.

    ``~user`` and variables other than ``HOME`` are left as they are, as a shell's quoting would leave them.
    """
    for prefix in HOME_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            path = home + path[len(prefix):]
            break
    return path if cwd is None else posixpath.normpath(posixpath.join(cwd, path))
