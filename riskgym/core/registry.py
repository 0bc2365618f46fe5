"""Open registries: name -> item, for the kinds riskgym knows and those an environment adds.

Tools, check kinds, effect kinds, world parts and sandboxes are each kept in one :class:`Registry`. An environment
adds its own with ``register`` before it loads scenarios that use them; nothing else needs editing.

>>> colours = Registry[str]("colour")
>>> colours.register("red", "#f00")
'#f00'
>>> colours.unknown("blue")
"unknown colour 'blue'; known colours are red"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError, create_model

T = TypeVar("T")


class Registry(Generic[T]):
    """Named items of one kind (``what`` names the kind in messages)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        """Add ``item`` under ``name``; a name already taken is an error unless ``replace``. Returns the item."""
        if name in self._items and not replace and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is already registered; pick another name or pass replace=True")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that add a kind for a while)."""
        self._items.pop(name, None)

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.what} {name!r}; known {self.what}s are {', '.join(self._items) or 'none'}"

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(self.unknown(name))
        return self._items[name]

    def get(self, name: str) -> T | None:
        """The item, or None."""
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs, in the order they were registered."""
        return list(self._items.items())


M = TypeVar("M", bound=BaseModel)


def by_kind(base: type[M], key: str, registry: Registry[type[M]]) -> Callable[[Any, Any, Any], M]:
    """A pydantic wrap validator for a field of ``base``'s kinds.

    A TOML table becomes the model that its ``key`` names in ``registry`` (see :func:`parse_by_kind`); a ``base``
    already made passes as it is.
    """
    def parse(value: Any, handler: Any, info: Any) -> M:
        if isinstance(value, base):
            return value
        return parse_by_kind(value, key, registry)  # type: ignore[arg-type,return-value]

    return parse


def parse_by_kind(value: Any, key: str, registry: Registry[type[BaseModel]]) -> BaseModel:
    """Validate ``value`` (a TOML table) as the model its ``key`` names in ``registry``.

    For a pydantic wrap validator: a ValidationError raised here keeps its fields' paths, so an unknown kind is
    reported at ``<field>.<key>`` and a wrong field of that kind at its own path.
    """
    if isinstance(value, dict) and value.get(key) in registry:
        return registry[value[key]].model_validate(value)

    def known(name: Any) -> Any:
        if not isinstance(name, str) or name not in registry:
            raise ValueError(registry.unknown(str(name)))
        return name

    kind = create_model(f"_{key}", **{key: (Annotated[Any, AfterValidator(known)], ...)})  # type: ignore[call-overload]
    kind.model_validate(value if isinstance(value, dict) else {key: value})
    raise ValidationError.from_exception_data("kind", [])  # pragma: no cover (the line above raised)
