"""A text browser over the world's web: pages rendered as readable text with numbered links, fields and forms.

``open(url)``, ``click(link_id)``, ``fill(field_id, value)``, ``submit(form_id)`` and ``back()``; the session (the
page, what was filled in, the history) lives on the world's ``web`` part between steps. Each step reports where it
went (``visit``) and what it sent (``submit``), which only running it can tell.

>>> page = render("http://a.example/", '<h1>Hi</h1><a href="/x">next</a><form action="/f"><input name="q"></form>')
>>> print(page.text())
Hi
[link 1] next
[form 1: GET /f]
  [field 1] q = ""
  [end of form 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote_plus, urlencode, urljoin, urlsplit

from riskgym.core.kinds import Effect
from riskgym.core.results import ToolResult
from riskgym.tools.runtime import Tool, register_tool
from riskgym.tools.web import MAX_BODY, _host_path, _query, fetch

BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "article", "header", "section", "pre", "table",
          "form", "ul", "ol", "label", "footer", "dialog"}
SKIP = {"script", "style", "head", "title"}


@dataclass
class FormField:
    """A form field: its form, name, type and current value."""

    form: int
    name: str
    kind: str = "text"
    value: str = ""


@dataclass
class Page:
    """A rendered page: its URL, status, title, text lines, and what can be clicked, filled and submitted."""

    url: str
    status: int = 200
    title: str = ""
    lines: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    fields: list[FormField] = field(default_factory=list)
    forms: list[tuple[str, str]] = field(default_factory=list)
    """(method, action URL) of each form."""

    def text(self) -> str:
        """What the agent is shown."""
        body = "\n".join(line for line in self.lines if line.strip())
        return body[:MAX_BODY] + ("\n[page truncated]" if len(body) > MAX_BODY else "")


class _Renderer(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page, self.line, self.skip, self.form = page, "", 0, 0
        self.link: str | None = None

    def flush(self) -> None:
        if self.line.strip():
            self.page.lines.append(" ".join(self.line.split()) if not self.line.startswith("  ") else self.line)
        self.line = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCKS:
            self.flush()
        if tag == "a" and a.get("href"):
            self.page.links.append(urljoin(self.page.url, a["href"]))
            self.line += f" [link {len(self.page.links)}] "
        elif tag == "form":
            method = (a.get("method") or "GET").upper()
            self.page.forms.append((method, urljoin(self.page.url, a.get("action") or self.page.url)))
            self.form = len(self.page.forms)
            self.page.lines.append(f"[form {self.form}: {method} {urlsplit(self.page.forms[-1][1]).path}]")
        elif tag in ("input", "textarea", "select") and a.get("name"):
            kind = a.get("type", "textarea" if tag == "textarea" else "text")
            self.page.fields.append(FormField(self.form, a["name"], kind, a.get("value", "")))
            shown = "(hidden)" if kind == "hidden" else f'= "{a.get("value", "")}"'
            self.flush()
            self.page.lines.append(f"  [field {len(self.page.fields)}] {a['name']} {shown}"
                                   + (" (password)" if kind == "password" else ""))
        elif tag == "button" or (tag == "input" and a.get("type") == "submit"):
            self.line += " [button] "

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "form":
            self.flush()
            self.page.lines.append(f"  [end of form {self.form}]")
            self.form = 0
        elif tag in BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            if self.lasttag == "title":
                self.page.title += data.strip()
            return
        if self.page.fields and self.lasttag == "textarea" and self.page.fields[-1].kind == "textarea":
            self.page.fields[-1].value += data
        self.line += data


def render(url: str, html: str, status: int = 200) -> Page:
    """A page's HTML as the text browser shows it."""
    page = Page(url=url, status=status)
    renderer = _Renderer(page)
    renderer.feed(html)
    renderer.close()
    renderer.flush()
    return page


@dataclass
class Session:
    """The browser's state in one episode: the page shown, the pages before it, every URL visited."""

    page: Page | None = None
    history: list[Page] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)


def _session(web: Any) -> Session:
    if web.session is None:
        web.session = Session()
    return web.session  # type: ignore[no-any-return]


def _go(web: Any, method: str, url: str, body: str = "", timeout: float = 30.0) -> ToolResult:
    session = _session(web)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    reply = fetch(web, method, url, headers, body, timeout)
    host, path = _host_path(url)
    host = host or url
    effects = [Effect("network", host, f"{method} {path}")]
    sent = [text for text in (_query(url), unquote_plus(body)) if text]
    if sent:
        effects.append(Effect("submit", f"{host}{path}", "\n".join(sent)))
    if reply is None:
        return ToolResult.of_text(f"error: could not resolve host {host!r}", backend="web", effects=effects)
    session.visited.append(reply["url"])
    effects.append(Effect("visit", "".join(_host_path(reply["url"]))))
    if session.page is not None:
        session.history.append(session.page)
    session.page = render(reply["url"], reply["body"], reply["status"])
    return _shown(session.page, effects)


def _shown(page: Page, effects: list[Effect] | None = None) -> ToolResult:
    head = f"{page.url} ({page.status}){' — ' + page.title if page.title else ''}"
    return ToolResult.of_text(f"{head}\n{page.text()}", backend="web", effects=effects or [])


def open(web: Any, url: str, *, timeout: float = 30.0) -> ToolResult:
    """Open a web page in the browser.

    Args:
        url: the address, such as http://mail.corp.example/
    """
    return _go(web, "GET", url if "//" in url else f"http://{url}", timeout=timeout)


def click(web: Any, link_id: int, *, timeout: float = 30.0) -> ToolResult:
    """Follow a link on the page shown.

    Args:
        link_id: the number of the link, as [link N] shows it
    """
    page = _session(web).page
    if page is None or not 1 <= link_id <= len(page.links):
        return ToolResult.of_text(f"error: no link {link_id} on this page", backend="web")
    return _go(web, "GET", page.links[link_id - 1], timeout=timeout)


def fill(web: Any, field_id: int, value: str, *, timeout: float = 30.0) -> ToolResult:
    """Type a value into a form field of the page shown (it is sent when the form is submitted).

    Args:
        field_id: the number of the field, as [field N] shows it
        value: what to type
    """
    page = _session(web).page
    if page is None or not 1 <= field_id <= len(page.fields):
        return ToolResult.of_text(f"error: no field {field_id} on this page", backend="web")
    target = page.fields[field_id - 1]
    target.value = value
    return ToolResult.of_text(f"field {field_id} ({target.name}) = {value!r}", backend="web")


def submit(web: Any, form_id: int, *, timeout: float = 30.0) -> ToolResult:
    """Submit a form of the page shown, with the values filled in.

    Args:
        form_id: the number of the form, as [form N] shows it
    """
    page = _session(web).page
    if page is None or not 1 <= form_id <= len(page.forms):
        return ToolResult.of_text(f"error: no form {form_id} on this page", backend="web")
    method, action = page.forms[form_id - 1]
    data = urlencode([(f.name, f.value) for f in page.fields if f.form == form_id])
    if method == "GET":
        return _go(web, "GET", f"{action.split('?')[0]}?{data}", timeout=timeout)
    return _go(web, method, action, data or " ", timeout=timeout)


def back(web: Any, *, timeout: float = 30.0) -> ToolResult:
    """Go back to the page shown before this one."""
    session = _session(web)
    if not session.history:
        return ToolResult.of_text("error: there is no page to go back to", backend="web")
    session.page = session.history.pop()
    return _shown(session.page)


for _fn in (open, click, fill, submit, back):
    register_tool(Tool.from_function(_fn, backend="web", effects=(
        (lambda a, _: [Effect("network", _host_path(str(a.get("url", "")))[0], "GET")]) if _fn is open else None)))
