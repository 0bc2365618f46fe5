"""Injection slots: placeholders ``{{inject:NAME}}`` in a scenario's text, filled per run.

A plain run fills each with nothing; an injection suite (:mod:`riskgym.core.injection`) with an attack.

>>> fill({"body": "Hi {{inject:note}}", "n": [1, "{{inject:x}}"]}, {"note": "there"})
{'body': 'Hi there', 'n': [1, '']}
"""

from __future__ import annotations

import re
from typing import Any

SLOT = re.compile(r"\{\{inject:([a-z][a-z0-9_]*)\}\}")


def slots_in(value: Any) -> list[str]:
    """The slot names in a structure of strings, lists and dicts, in order of appearance."""
    found: list[str] = []
    if isinstance(value, str):
        found = SLOT.findall(value)
    elif isinstance(value, dict):
        found = [n for v in value.values() for n in slots_in(v)]
    elif isinstance(value, list | tuple):
        found = [n for v in value for n in slots_in(v)]
    return list(dict.fromkeys(found))


def fill(value: Any, texts: dict[str, str]) -> Any:
    """The structure with each slot replaced by its text (nothing when ``texts`` has none for it)."""
    if isinstance(value, str):
        return SLOT.sub(lambda m: texts.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: fill(v, texts) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill(v, texts) for v in value]
    return value
