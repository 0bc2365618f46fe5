"""riskgym: find out what AI agents do when an action can cause harm.

Importing riskgym is cheap. If gymnasium is already imported (as it is for ``gymnasium.make("riskgym:...")``),
every scenario in the library is registered as ``riskgym/<name>-v<version>``; otherwise call
:func:`riskgym.register_envs`.
"""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def register_envs() -> list[str]:
    """Register every scenario of the library with gymnasium and return the ids.

    >>> import gymnasium, riskgym
    >>> "riskgym/free-disk-space-v0" in riskgym.register_envs()
    True
    """
    from riskgym.library import register_library

    return register_library()


if "gymnasium" in sys.modules:
    register_envs()
