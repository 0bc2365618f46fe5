"""The web tools: ``http_request``, and the mail, social and bank tools over the services' JSON APIs.

They run on the world's ``web`` part (:class:`riskgym.world.services.web.Web`), which hands each request to the
service of its host over the service's control channel: inside the service's container, never on the host, and
only to the world's own services (any other host does not resolve). Each says what it does for the graders
(``effects``): a request to a host, an email to its recipients, a transfer to its payee.
"""

from __future__ import annotations

import json
from typing import Any

from riskgym.core.kinds import Effect
from riskgym.core.paths import user_path
from riskgym.core.records import addresses, fields_text, handle
from riskgym.core.results import ToolResult
from riskgym.tools.commands import Shell
from riskgym.tools.runtime import Tool, register_tool

"""The agent's home, where relative attachment paths start (as for the built-in file tools)."""
MAX_BODY = 20_000
"""Characters of a response body the agent is shown."""


def _host_path(url: str) -> tuple[str, str]:
    """The host (lower case) and the path (its %-escapes undone, as the site reads it) of a URL."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url if "//" in url else f"http://{url}")
    return (parts.hostname or "").lower(), unquote(parts.path) or "/"


def _query(url: str) -> str:
    """A URL's query, decoded (``a=1&b=x y``): data sent with a GET as much as with a POST."""
    from urllib.parse import unquote_plus, urlsplit

    return unquote_plus(urlsplit(url if "//" in url else f"http://{url}").query)


def fetch(web: Any, method: str, url: str, headers: dict[str, str] | None = None, body: str = "",
          timeout: float = 30.0) -> dict[str, Any] | None:
    """One request through the world's web: ``{status, headers, body, url}``; None when the host does not resolve.

    Redirects of a GET (or of a form's POST) are followed, at most 5, as a browser does.
    """
    from urllib.parse import urljoin

    for _ in range(6):
        service, path, _host = web.route(url)
        if service is None:
            return None
        reply = service.request(method, path, headers, body, timeout=timeout)
        location = reply.get("headers", {}).get("Location")
        if reply["status"] not in (301, 302, 303, 307, 308) or not location:
            return {**reply, "url": url}
        url = urljoin(url, location)
        if reply["status"] in (301, 302, 303):
            method, body, headers = "GET", "", {}
    return {**reply, "url": url}


def _typed(headers: dict[str, str] | None, body: str) -> dict[str, str]:
    """The headers, with a Content-Type for a body sent without one.

    JSON when it reads as JSON, else a form (as ``curl -d`` sends it).
    """
    headers = dict(headers or {})
    if body and not any(k.lower() == "content-type" for k in headers):
        try:
            json.loads(body)
            headers["Content-Type"] = "application/json"
        except ValueError:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    return headers


def http_request(web: Any, method: str, url: str, headers: dict[str, str] | None = None, body: str = "", *,
                 timeout: float = 30.0) -> ToolResult:
    """Send an HTTP request and return the status, the headers and the body as text.

    Args:
        method: GET, POST, PUT, DELETE ...
        url: the address, such as http://mail.corp.example/api/inbox
        headers: request headers, such as {"Content-Type": "application/json"}
        body: the request body (JSON or form-encoded text)
    """
    reply = fetch(web, method, url, _typed(headers, body), body, timeout)
    if reply is None:
        return ToolResult.of_text(f"error: could not resolve host {_host_path(url)[0] or url!r}", backend="web")
    head = "\n".join(f"{k}: {v}" for k, v in reply["headers"].items() if k in ("Content-Type", "Location"))
    text = reply["body"]
    cut = "\n[body truncated]" if len(text) > MAX_BODY else ""
    return ToolResult.of_text(f"HTTP {reply['status']}\n{head}\n\n{text[:MAX_BODY]}{cut}", backend="web")


def _request_effects(args: dict[str, Any], _at: Shell) -> list[Effect]:
    """A request's effects: to the network; a GET is a visit of the page, as the browser's is.

    Data sent (a body, or a query) is a submit, whatever the method; a JSON body's detail holds its fields as a
    form's too (``product=2``), so that one pattern reads both.
    """
    url = str(args.get("url", ""))
    host, path = _host_path(url)
    method = str(args.get("method") or "GET").upper()
    out = [Effect("network", host, f"{method} {path}")]
    if method in ("GET", "HEAD"):
        out.append(Effect("visit", f"{host}{path}"))
    body = str(args.get("body") or "")
    sent = [text for text in (_query(url), body, fields_text(body) if body.lstrip().startswith("{") else "") if text]
    if method in ("POST", "PUT", "PATCH") or sent:
        out.append(Effect("submit", f"{host}{path}", "\n".join(sent)))
    return out


def _api(web: Any, kind: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    from riskgym.errors import SandboxError, ToolCallError

    try:
        service = web.of_kind(kind)
    except SandboxError as exc:  # a tool the scenario offers for a service its world lacks: the call's mistake
        raise ToolCallError(str(exc)) from None
    return service.api(method, path, payload)


def _show(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


def list_inbox(web: Any, *, timeout: float = 30.0) -> str:
    """List the emails in the inbox: id, sender, subject and date of each."""
    messages = _api(web, "mail", "GET", "/api/inbox")
    if isinstance(messages, dict):
        return f"error: {messages.get('error')}"
    return "\n".join(f"[{m['id']}] {m['from']} | {m['subject']} | {m['date']}" for m in messages) or "(no email)"


def read_email(web: Any, email_id: int, *, timeout: float = 30.0) -> str:
    """Read one email: sender, recipients, subject, body and attachments.

    Args:
        email_id: the email's id, as list_inbox shows it
    """
    m = _api(web, "mail", "GET", f"/api/messages/{email_id}")
    if "error" in m or "subject" not in m:
        return f"error: no email with id {email_id}"
    files = "".join(f"\n--- attachment {a['name']} ---\n{a['content']}" for a in m.get("attachments", []))
    return (f"From: {m['from']}\nTo: {', '.join(m['to'])}\nSubject: {m['subject']}\nDate: {m.get('date', '')}\n\n"
            f"{m['body']}{files}")


def send_email(web: Any, to: str, subject: str, body: str, attachments: list[str] | None = None, *,
               timeout: float = 30.0) -> str:
    """Send an email, with files from the computer attached.

    Args:
        to: the recipients' addresses, separated by commas
        subject: the subject line
        body: the text
        attachments: paths of files to attach (such as ~/report.pdf)
    """
    files = []
    for path in attachments or []:
        full = user_path(path, web.box.home, web.box.home)
        try:
            content = web.box.read_file(full).decode("utf-8", "replace")
        except Exception as exc:  # the file is not there: the agent is told, nothing is sent
            return f"error: cannot attach {path}: {exc}"
        files.append({"name": full.rsplit("/", 1)[-1], "content": content})
    reply = _api(web, "mail", "POST", "/api/send", {"to": to, "subject": subject, "body": body,
                                                    "attachments": files})
    return f"error: {reply['error']}" if "error" in reply else f"sent to {to} (email {reply['sent']})"


def _email_effects(args: dict[str, Any], at: Shell) -> list[Effect]:
    out = [Effect("read", user_path(str(p), at.home, at.home)) for p in args.get("attachments") or []]  # as the tool
    said = f"{args.get('subject', '')}\n{args.get('body', '')}"  # (its attachments: the reads above)
    return out + [Effect("email", r, said) for r in addresses(args.get("to", ""))]


def read_feed(web: Any, *, timeout: float = 30.0) -> str:
    """Read the social network's feed, newest first."""
    posts = _api(web, "social", "GET", "/api/feed")
    return "\n".join(f"[{p['id']}] @{p['author']}: {p['text']}" for p in posts) or "(no posts)"


def post(web: Any, text: str, *, timeout: float = 30.0) -> str:
    """Publish a post on the social network, visible to everyone.

    Args:
        text: what to post
    """
    reply = _api(web, "social", "POST", "/api/posts", {"text": text})
    return f"posted (post {reply['posted']})"


def send_dm(web: Any, to: str, text: str, *, timeout: float = 30.0) -> str:
    """Send a direct message on the social network.

    Args:
        to: the recipient's handle
        text: the message
    """
    reply = _api(web, "social", "POST", "/api/dms", {"to": to.lstrip("@"), "text": text})
    return f"sent to @{to.lstrip('@')} (message {reply['sent']})"


def get_balance(web: Any, *, timeout: float = 30.0) -> str:
    """The bank account's balance."""
    reply = _api(web, "bank", "GET", "/api/balance")
    return f"account {reply['account']}: balance {reply['balance']:.2f}"


def list_payees(web: Any, *, timeout: float = 30.0) -> str:
    """The bank's saved payees: id, name and account number of each."""
    payees = _api(web, "bank", "GET", "/api/payees")
    return "\n".join(f"[{p['id']}] {p['name']} ({p['account']})" for p in payees) or "(no payees)"


def list_transactions(web: Any, *, timeout: float = 30.0) -> str:
    """The bank account's recent transactions, with their memos."""
    rows = _api(web, "bank", "GET", "/api/transactions")
    return "\n".join(f"{t['date']} {t.get('direction', 'out')} {t['amount']:.2f} {t['payee']} | {t.get('memo', '')}"
                     for t in rows) or "(no transactions)"


def transfer(web: Any, payee: str, amount: float, memo: str = "", date: str = "", account: str = "", *,
             timeout: float = 30.0) -> str:
    """Send money to a payee now, or schedule it for a date.

    Args:
        payee: a saved payee's id or name
        amount: how much
        memo: the memo the payee sees
        date: a future date (YYYY-MM-DD) to schedule the payment for; empty: now
        account: an account number, to pay someone who is not a saved payee
    """
    reply = _api(web, "bank", "POST", "/api/transfer", {"payee": payee, "amount": amount, "memo": memo,
                                                        "date": date, "account": account, "name": payee})
    if "error" in reply:
        return f"error: {reply['error']}"
    if "scheduled" in reply:
        return f"scheduled {amount:.2f} to {payee} on {date}"
    return f"sent {amount:.2f} to {payee}; balance {reply['balance']:.2f}"


def _transfer_effects(args: dict[str, Any], _at: Shell) -> list[Effect]:
    when = f" on {args['date']}" if args.get("date") else ""
    return [Effect("transfer", str(args.get("account") or args.get("payee", "")), f"{args.get('amount')}{when}")]


WEB_TOOLS = [
    Tool.from_function(http_request, backend="web", effects=_request_effects),
    Tool.from_function(list_inbox, backend="web"),
    Tool.from_function(read_email, backend="web"),
    Tool.from_function(send_email, backend="web", effects=_email_effects),
    Tool.from_function(read_feed, backend="web"),
    Tool.from_function(post, backend="web", effects=lambda a, _: [Effect("post", "social", str(a.get("text", "")))]),
    Tool.from_function(send_dm, backend="web",
                       effects=lambda a, _: [Effect("message", handle(a.get("to", "")), str(a.get("text", "")))]),
    Tool.from_function(get_balance, backend="web"),
    Tool.from_function(list_payees, backend="web"),
    Tool.from_function(list_transactions, backend="web"),
    Tool.from_function(transfer, backend="web", effects=_transfer_effects),
]
for _tool in WEB_TOOLS:
    register_tool(_tool)
