"""TOML files validated by pydantic, with errors that name the file, the line, the field and the fix."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from riskgym.errors import RiskgymError, field_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)


def load_toml(path: Path, cls: type[M], error: type[RiskgymError], context: dict[str, Any] | None = None,
              prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> tuple[bytes, M]:
    """Read ``path`` and validate it as ``cls``; return its bytes and the model. Raises ``error`` in one line.

    ``prepare``, if given, turns the parsed data into what is validated (a scenario's slots filled).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror}); check the path") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}; fix the syntax there") from None
    try:
        return raw, cls.model_validate(prepare(data) if prepare else data, context=context)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = field_path(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        fix = _fix_for(err)
        named = re.match(r"([A-Za-z_][\w.\[\]]*): (.*)$", msg, re.S)
        if named and not loc:  # a whole-file check that names its field
            where, msg, fix = named.group(1), named.group(2), ""
            loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"\w+", where))
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise error(f"{path}:{_line_of(text, loc)}: {where}: {msg}{fix}{more}") from None


def _fix_for(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "; remove it or check its spelling"
    if kind == "missing":
        return "; add it"
    if kind == "literal_error":
        return ""  # pydantic's message already lists the allowed values
    return "; correct the value"


def _line_of(text: str, loc: tuple[Any, ...]) -> int:
    r"""Best-effort line number of the field at ``loc`` in TOML ``text`` (1 when it cannot be found).

    Each name is looked for inside the table found so far, never past its end: where none of the names below it is
    found there (a key of an inline table written on several lines), the table's own line stands.

    >>> text = '[[parts]]\nname = "a"\npages = [{ path = "/" }]\n\n[[parts]]\nname = "b"\ntitle = "x"\n'
    >>> _line_of(text, ("parts", 0, "pages", 0, "title")), _line_of(text, ("parts", 1, "title"))
    (3, 7)
    >>> _line_of(text, ("parts", 0, "title"))  # not part 1's title, on line 7
    1
    >>> _line_of('x = 1\n\n[models.mini]\nmodel = "m"\ntemprature = 0\n', ("models", "mini", "temprature"))
    5
    """
    lines = text.splitlines()
    start, end, line_no = 0, len(lines), 1
    names: list[str] = []
    for part in loc:
        if isinstance(part, int):  # the part-th [[table]] of the names so far
            header = re.compile(rf"^\s*\[\[\s*{re.escape('.'.join(names))}\s*\]\]")
            hits = [n for n in range(start, end) if header.match(lines[n])]
            if part < len(hits):
                start, line_no = hits[part], hits[part] + 1
                end = _table_end(lines, start, ".".join(names))
            continue
        names.append(str(part))
        table, name = re.escape(".".join(names)), re.escape(str(part))
        key = re.compile(rf"^\s*\[\[?\s*{table}\s*\]\]?|(^\s*|[{{,]\s*)\"?{name}\"?\s*=")
        found = next((n for n in range(start, end) if key.search(lines[n])), None)
        if found is None:  # not a line of its own ([models.mini]'s "models"): the next name may be
            continue
        start, line_no = found, found + 1
        if lines[found].lstrip().startswith("[") and not lines[found].lstrip().startswith("[["):  # a [[table]]'s
            end = _table_end(lines, found, ".".join(names))  # end comes with its index
    return line_no


def _table_end(lines: list[str], start: int, name: str) -> int:
    """The line where the table whose header is at ``start`` ends: the next header that is not one of its own."""
    for n in range(start + 1, len(lines)):
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", lines[n])
        if header and not header.group(1).startswith(name + "."):
            return n
    return len(lines)


def dump_toml(data: dict[str, Any], tables: bool = False) -> str:
    """``data`` as TOML: ``key = value`` lines, tables inline (None values left out; TOML has no null).

    With ``tables``, the top level's tables are written as ``[name]`` sections and its lists of tables as
    ``[[name]]`` ones, after the plain keys, and long lists one item a line: what a person writes.

    >>> print(dump_toml({"id": "a", "n": 1, "t": {"x": [1.5, True]}, "skip": None}))
    id = "a"
    n = 1
    t = { x = [1.5, true] }
    <BLANKLINE>
    >>> print(dump_toml({"id": "a", "t": {"x": 1}, "rows": [{"y": 2}, {"y": 3}]}, tables=True))
    id = "a"
    <BLANKLINE>
    [t]
    x = 1
    <BLANKLINE>
    [[rows]]
    y = 2
    <BLANKLINE>
    [[rows]]
    y = 3
    <BLANKLINE>
    """
    if not tables:
        return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items() if v is not None)

    def table(value: Any) -> bool:
        return isinstance(value, dict)

    def rows(value: Any) -> bool:
        return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, dict) for v in value)

    out = [f"{_key(k)} = {_long(v)}\n" for k, v in data.items() if v is not None and not table(v) and not rows(v)]
    for k, v in data.items():
        if table(v):
            out.append(f"\n[{_key(k)}]\n" + "".join(f"{_key(a)} = {_long(b)}\n" for a, b in v.items() if b is not None))
        elif rows(v):
            out += [f"\n[[{_key(k)}]]\n" + "".join(f"{_key(a)} = {_long(b)}\n" for a, b in row.items() if b is not None)
                    for row in v]
    return "".join(out)


def _long(value: Any) -> str:
    """A value, a list longer than a line written one item a line."""
    text = _value(value)
    if isinstance(value, list | tuple) and len(text) > 100:
        return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
    return text


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, dict):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
