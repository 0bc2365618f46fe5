"""The field types every file format of riskgym shares: absolute paths, octal modes, regular expressions."""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (start with /), got {value!r}")
    return posixpath.normpath(value)


def _mode(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{3,4}", value):
        return int(value.removeprefix("0o"), 8)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return value
    raise ValueError(f'must be an octal mode such as "0644" or 0o644, got {value!r}')


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"regex {value!r} does not compile: {exc}") from None
    return value


AbsPath = Annotated[str, AfterValidator(_abs_path)]
Mode = Annotated[int, BeforeValidator(_mode)]
Regex = Annotated[str, AfterValidator(_regex)]


class Strict(BaseModel):
    """Base of every scenario model: unknown fields are errors and loaded scenarios are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
