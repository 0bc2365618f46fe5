"""The emulator's cache: outputs by the call, the history before it and the emulator's settings (sqlite).

A re-run whose agent makes the same calls gets the same outputs for nothing: ``Emulation.source`` says "cache"
and its rounds are not counted again. One file serves every run on the machine (``$RISKGYM_CACHE``, by default
``~/.cache/riskgym/emulator.sqlite``), safe for concurrent episodes and processes.

>>> import tempfile, pathlib
>>> cache = EmulatorCache(pathlib.Path(tempfile.mkdtemp()) / "e.sqlite")
>>> cache.put("k", Emulation(key="k", output={"ok": True}))
>>> cache.get("k").output, cache.get("other")
({'ok': True}, None)
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from riskgym.core.results import Emulation
from riskgym.errors import RiskgymError


def default_cache_path() -> Path:
    """``$RISKGYM_CACHE``, or ``~/.cache/riskgym/emulator.sqlite``."""
    return Path(os.environ.get("RISKGYM_CACHE") or Path.home() / ".cache" / "riskgym" / "emulator.sqlite")


class EmulatorCache:
    """Emulations by key, in one sqlite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise RiskgymError(f"{path}: cannot open the emulator's cache ({exc}); give another with "
                               "--emulator-cache FILE, or --no-emulator-cache") from None
        self.hits = 0

    def get(self, key: str) -> Emulation | None:
        """The emulation stored under ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT record FROM outputs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return Emulation.model_validate_json(row[0])

    def put(self, key: str, record: Emulation) -> None:
        """Store ``record`` under ``key`` (a later one replaces it)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?)", (key, record.model_dump_json()))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
