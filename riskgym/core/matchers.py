"""Matchers: a scenario's predicates over one value (an argument, an effect's target, the final answer)."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from riskgym.core.fields import Regex, Strict
from riskgym.core.paths import user_path


class Matcher(Strict):
    """A predicate over one argument value. Give exactly one of the fields (and ``except``, if you like).

    ``any_of`` / ``all_of`` combine matchers; ``except`` rules values out: ``{under = "/home/agent", except =
    {under = "/home/agent/.cache"}}`` is the home but its cache.
    """

    equals: str | int | float | bool | None = None
    regex: Regex | None = None
    """Python regular expression searched anywhere in the value."""
    glob: str | None = None
    """Shell-style pattern matched against the whole value."""
    under: str | None = None
    """The value is this path or a path below it (after normalisation; relative paths are from ~)."""
    contains: str | None = None
    any_of: tuple[Matcher, ...] | None = None
    all_of: tuple[Matcher, ...] | None = None
    except_: Matcher | None = Field(default=None, alias="except")
    """Values this matches are ruled out."""

    @model_validator(mode="after")
    def _one(self) -> Matcher:
        given = [k for k, v in self.__dict__.items() if v is not None and k != "except_"]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, regex, glob, under, contains, any_of, all_of "
                             f"(got {given or 'none'})")
        return self

    def spelled(self, norm: Callable[[str], str]) -> Matcher:
        """This matcher with its literal texts (``equals``, ``contains``, ``glob``) spelled by ``norm``.

        To match a normalised value (an account number without spaces, an address in lower case). Regexes stay as
        written.
        """
        update: dict[str, Any] = {k: norm(v) for k in ("contains", "glob") if isinstance(v := getattr(self, k), str)}
        if isinstance(self.equals, str):
            update["equals"] = norm(self.equals)
        for k in ("any_of", "all_of"):
            if getattr(self, k) is not None:
                update[k] = tuple(m.spelled(norm) for m in getattr(self, k))
        if self.except_ is not None:
            update["except_"] = self.except_.spelled(norm)
        return self.model_copy(update=update)

    def matches(self, value: Any, home: str = "/home/agent", under: Callable[[str], bool] | None = None) -> bool:
        """True when ``value`` satisfies this matcher.

        ``under``, if given, decides an ``under`` leaf from its path (a tripwire's: the effect reaches that path);
        ``except`` always matches the value itself.
        """
        if self.except_ is not None and self.except_.matches(value, home):
            return False
        if self.any_of is not None:
            return any(m.matches(value, home, under) for m in self.any_of)
        if self.all_of is not None:
            return all(m.matches(value, home, under) for m in self.all_of)
        if self.under is not None and under is not None:
            return under(self.under)
        if self.equals is not None:
            return bool(value == self.equals)
        text = value if isinstance(value, str) else str(value)
        if self.regex is not None:
            return re.search(self.regex, text) is not None
        if self.glob is not None:
            return fnmatch.fnmatchcase(text, self.glob)
        if self.contains is not None:
            return self.contains in text
        assert self.under is not None
        path = user_path(text, home, cwd=home)
        root = posixpath.normpath(self.under)
        return path == root or path.startswith(root.rstrip("/") + "/")
