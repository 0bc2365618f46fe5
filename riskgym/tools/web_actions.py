"""More of what users do on the web services: reply to and forward an email, delete a post, add and remove a payee.

Each is a call of the service's JSON API (the same the text browser's forms and a ``curl`` reach), and says what it
does for the graders: a reply or a forward is an ``email`` to its recipients (carrying the original's text), a
deleted post a ``retract``, a payee added or removed a ``payee`` effect on its account.
"""

from __future__ import annotations

from typing import Any

from riskgym.core.kinds import Effect, EffectKind, register_effect
from riskgym.core.records import account, addresses
from riskgym.core.results import ToolResult
from riskgym.tools.runtime import Tool, register_tool
from riskgym.tools.web import _api

for _kind in (EffectKind("retract", "a post deleted (target: the site; detail: the post)", touches="social"),
              EffectKind("payee", "a bank payee added or removed (target: the account; detail: added or removed, "
                                  "and the name)", touches="bank")):
    register_effect(_kind)


def reply_email(web: Any, email_id: str, body: str, *, timeout: float = 30.0) -> ToolResult:
    """Reply to an email: to its sender, quoting it.

    Args:
        email_id: the email's id (from list_inbox)
        body: the reply's text
    """
    return _sent(_api(web, "mail", "POST", f"/api/messages/{email_id}/reply", {"body": body}), "replied to", body)


def forward_email(web: Any, email_id: str, to: str, body: str = "", *, timeout: float = 30.0) -> ToolResult:
    """Forward an email, with its text and attachments, to other people.

    Args:
        email_id: the email's id (from list_inbox)
        to: the recipients' addresses, separated by commas
        body: a note above the forwarded message
    """
    return _sent(_api(web, "mail", "POST", f"/api/messages/{email_id}/forward", {"to": to, "body": body}),
                 "forwarded to", body)


def _sent(reply: dict[str, Any], done: str, body: str) -> ToolResult:
    """What the mail service said, and the email it sent, to each recipient (known only once it is sent)."""
    if "error" in reply:
        return ToolResult.of_text(f"error: {reply['error']}", backend="web")
    to = addresses(reply.get("to", []))
    return ToolResult.of_text(f"{done} {', '.join(to)} (email {reply['sent']})", backend="web",
                              effects=[Effect("email", r, f"{reply.get('subject', '')}\n{body}") for r in to])


def delete_post(web: Any, post_id: str, *, timeout: float = 30.0) -> str:
    """Delete one of your own posts from the social network.

    Args:
        post_id: the post's id (from read_feed)
    """
    reply = _api(web, "social", "DELETE", f"/api/posts/{post_id}")
    return f"error: {reply['error']}" if "error" in reply else f"deleted post {reply['deleted']}"


def add_payee(web: Any, name: str, account: str, *, timeout: float = 30.0) -> str:
    """Save a new payee at the bank, to pay later by name.

    Args:
        name: the payee's name
        account: their account number or IBAN
    """
    reply = _api(web, "bank", "POST", "/api/payees", {"name": name, "account": account})
    return f"error: {reply['error']}" if "error" in reply else f"added payee {name} (id {reply['added']})"


def remove_payee(web: Any, payee: str, *, timeout: float = 30.0) -> str:
    """Remove a saved payee from the bank.

    Args:
        payee: the payee's id (from list_payees)
    """
    reply = _api(web, "bank", "DELETE", f"/api/payees/{payee}")
    return f"error: {reply['error']}" if "error" in reply else f"removed payee {payee}"


WEB_ACTIONS = [
    Tool.from_function(reply_email, backend="web"),  # (its effects: the email it sent, once sent)
    Tool.from_function(forward_email, backend="web",
                       effects=lambda a, _: [Effect("email", r, "Fwd") for r in addresses(a.get("to", ""))]),
    Tool.from_function(delete_post, backend="web",
                       effects=lambda a, _: [Effect("retract", "social", f"post {a.get('post_id', '')}")]),
    Tool.from_function(add_payee, backend="web",
                       effects=lambda a, _: [Effect("payee", account(a.get("account")), f"added {a.get('name', '')}")]),
    Tool.from_function(remove_payee, backend="web",
                       effects=lambda a, _: [Effect("payee", str(a.get("payee", "")), "removed")]),
]
for _tool in WEB_ACTIONS:
    register_tool(_tool)
