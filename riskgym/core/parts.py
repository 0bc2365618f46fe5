"""A world's parts besides the box, as a scenario declares them in ``[[parts]]``: web services and others.

A service is a site the agent reaches by a realistic host name (``mail.corp.example``) from its box and through
its tools, seeded per episode from the scenario's fields here, and whose state the graders read. The kinds: ``mail``
(webmail), ``social``, ``bank``, ``shop``, ``wiki``, and ``site`` (pages a scenario writes: phishing forms, pop-ups,
downloads). Environments add kinds of their own to :data:`PARTS`.

>>> spec = PARTS["bank"].model_validate({"name": "bank", "kind": "bank", "host": "bank.example", "balance": 120})
>>> spec.seed()["balance"], spec.build_key()
(120.0, {'kind': 'bank', 'name': 'bank', 'host': 'bank.example', 'aliases': []})
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from riskgym.core.fields import Strict
from riskgym.core.registry import Registry, by_kind

HostName = Annotated[str, Field(pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$", max_length=253)]
"""A host name such as ``mail.corp.example`` (lower case, at least one dot)."""


class PartSpec(Strict):
    """A part of the episode's world besides the agent's box: its name and kind, and the kind's own fields."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    kind: str
    in_box: ClassVar[bool] = False
    """It runs inside the agent's box (a desktop): the box is used whatever the tools."""

    def build_key(self) -> dict[str, Any]:
        """What building the part depends on (worlds with equal keys are interchangeable): all its fields."""
        return self.model_dump(mode="json")

    def provided_tools(self) -> list[dict[str, Any]]:
        """The tools it offers the agent, as ``ToolSpec`` fields (an emulator's toolkits); none by default."""
        return []

    @property
    def hosts(self) -> list[str]:
        """The names it answers to in the box's network (its host, then its aliases); none by default."""
        return []


PARTS: Registry[type[PartSpec]] = Registry("world part kind")
"""Part kind -> the model of its fields. Environments register theirs (a web service, an emulator)."""


parse_part = by_kind(PartSpec, "kind", PARTS)
"""Validate a part as the model of its kind (a pydantic wrap validator)."""


class ServiceSpec(PartSpec):
    """A web service beside the box: its host name, and the data it starts each episode with."""

    host: HostName
    aliases: tuple[HostName, ...] = ()
    """More host names that reach the same site."""
    seeded: ClassVar[tuple[str, ...]] = ()

    def build_key(self) -> dict[str, Any]:
        """Only the kind, name and host names: the seed is applied per episode, so one pooled world serves all."""
        return {"kind": self.kind, "name": self.name, "host": self.host, "aliases": list(self.aliases)}

    def seed(self) -> dict[str, Any]:
        """The site's starting data (what :mod:`riskgym.world.services.sites` shows and changes)."""
        return self.model_dump(mode="json", include=set(self.seeded), exclude_none=True)

    @property
    def hosts(self) -> list[str]:
        """Every name it answers to."""
        return [self.host, *self.aliases]


class Attachment(Strict):
    """A file attached to an email."""

    name: str
    content: str = ""


class Message(Strict):
    """An email in the mailbox (``folder``: inbox or sent)."""

    id: int | None = None
    from_: str = Field(alias="from")
    to: str | tuple[str, ...] = ()
    subject: str = ""
    body: str = ""
    date: str = "2026-11-30 09:00"
    folder: Literal["inbox", "sent"] = "inbox"
    attachments: tuple[Attachment, ...] = ()


class Contact(Strict):
    """A name in the address book."""

    name: str
    address: str


class MailSpec(ServiceSpec):
    """Webmail: an inbox (read, reply, attachments), sent mail, contacts."""

    kind: Literal["mail"] = "mail"
    user: str
    """The agent's user's address."""
    messages: tuple[Message, ...] = ()
    contacts: tuple[Contact, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("user", "messages", "contacts")

    def seed(self) -> dict[str, Any]:
        """The mailbox, with each message's sender under ``from``."""
        return self.model_dump(mode="json", include=set(self.seeded), by_alias=True, exclude_none=True)


class Post(Strict):
    """A post in the feed."""

    id: int | None = None
    author: str
    text: str
    time: str = "09:00"


class DirectMessage(Strict):
    """A direct message."""

    id: int | None = None
    from_: str = Field(alias="from")
    to: str
    text: str


class SocialSpec(ServiceSpec):
    """A social network: a feed of posts, posting, direct messages."""

    kind: Literal["social"] = "social"
    user: str
    """The agent's user's handle."""
    posts: tuple[Post, ...] = ()
    dms: tuple[DirectMessage, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("user", "posts", "dms")

    def seed(self) -> dict[str, Any]:
        """The network, with each message's sender under ``from``."""
        return self.model_dump(mode="json", include=set(self.seeded), by_alias=True, exclude_none=True)


class Payee(Strict):
    """A saved payee."""

    id: int | None = None
    name: str
    account: str


class Transaction(Strict):
    """A past transaction (``direction``: in or out)."""

    id: int | None = None
    date: str = "2026-11-28"
    payee: str
    account: str = ""
    amount: float
    memo: str = ""
    direction: Literal["in", "out"] = "out"


class Scheduled(Strict):
    """A payment scheduled for a date."""

    id: int | None = None
    date: str
    payee: str
    account: str = ""
    amount: float
    memo: str = ""


class BankSpec(ServiceSpec):
    """An online bank: balance and transactions, payees, transfers now or scheduled."""

    kind: Literal["bank"] = "bank"
    account: str = "00-0000-0000"
    owner: str = ""
    balance: float = 0.0
    payees: tuple[Payee, ...] = ()
    transactions: tuple[Transaction, ...] = ()
    scheduled: tuple[Scheduled, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("account", "owner", "balance", "payees", "transactions", "scheduled")


class Product(Strict):
    """A product for sale."""

    id: int | None = None
    name: str
    price: float
    description: str = ""


class ShopSpec(ServiceSpec):
    """A shop: products, orders (address and card)."""

    kind: Literal["shop"] = "shop"
    products: tuple[Product, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("products",)


class WikiPage(Strict):
    """A wiki page."""

    slug: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    title: str
    body: str = ""


class WikiSpec(ServiceSpec):
    """A wiki or docs site: pages to read and edit."""

    kind: Literal["wiki"] = "wiki"
    pages: tuple[WikiPage, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("pages",)


class SitePage(Strict):
    """A page the scenario writes: ``html`` served as it is, or ``body`` (HTML) inside the common frame."""

    path: Annotated[str, Field(pattern=r"^/")]
    title: str = ""
    body: str = ""
    html: str = ""


class SiteFile(Strict):
    """A file to download."""

    path: Annotated[str, Field(pattern=r"^/")]
    content: str = ""


class SiteSpec(ServiceSpec):
    """Pages a scenario supplies (phishing forms, pop-ups, download pages); every form submitted is recorded."""

    kind: Literal["site"] = "site"
    pages: tuple[SitePage, ...] = ()
    files: tuple[SiteFile, ...] = ()
    seeded: ClassVar[tuple[str, ...]] = ("pages", "files")

    @model_validator(mode="after")
    def _paths_once(self) -> SiteSpec:
        """One page or file a path: the site would serve only the first of two."""
        seen: dict[str, str] = {}
        paths = [("pages", n, p.path) for n, p in enumerate(self.pages)]
        for where, n, path in [*paths, *(("files", n, f.path) for n, f in enumerate(self.files))]:
            if path in seen:
                raise ValueError(f"{where}[{n}].path: {path!r} is taken by {seen[path]}; give each page and file a "
                                 "path of its own")
            seen[path] = f"{where}[{n}]"
        return self


SERVICES: dict[str, type[ServiceSpec]] = {cls.model_fields["kind"].default: cls for cls in (
    MailSpec, SocialSpec, BankSpec, ShopSpec, WikiSpec, SiteSpec)}
"""The web service kinds riskgym serves."""
for _kind, _cls in SERVICES.items():
    PARTS.register(_kind, _cls)
