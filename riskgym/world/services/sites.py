"""The web services' sites: webmail, social network, bank, shop, wiki, and pages a scenario supplies.

Runs inside the services container (Debian's Flask 2.2) and, for the in-memory world, on the host (Flask 3): Flask
and the standard library only, no riskgym imports. Each site is a Flask app over a :class:`Store`: the seeded data
it shows and changes, and a log of every request (``via``: ``net`` from the box's network, ``tool`` from a tool).
Pages are server-rendered HTML (numbered for the text browser by the client); ``/api/...`` speaks JSON.
"""

import copy
import itertools
import threading
import time

from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request
from werkzeug.exceptions import RequestEntityTooLarge

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><header><b>{{ site }}</b>{% for href, text in nav %} | <a href="{{ href }}">{{ text }}</a>{% endfor %}</header>
<h1>{{ title }}</h1>{{ body | safe }}</body></html>"""

KINDS = ("mail", "social", "bank", "shop", "wiki", "site")
BODY_LIMIT = 4 << 20
"""The longest request body a site reads, whole (bytes): far above any scenario's secret. A longer one is refused
(413) and logged as refused, with nothing of it read."""
STATE_WAIT = 5.0
"""Seconds the graders' read of a store waits for a request that holds it, before it reads it as it is."""


class Store:
    """One site's state: the data seeded from the scenario, changed by what the agent does, and a request log."""

    def __init__(self, kind, host):
        self.kind, self.host = kind, host
        self.lock = threading.RLock()
        self.seed({})

    def seed(self, data):
        """Start afresh from ``data`` (the scenario's seed for this site)."""
        with self.lock:
            self.data = normalise(self.kind, copy.deepcopy(data))
            self.log = []
            self.ids = itertools.count(1000)

    def state(self, wait=STATE_WAIT):
        """What the graders read: the data and the log.

        ``held``: a request still held the store after ``wait`` seconds, and this is what it had then.
        """
        held = not self.lock.acquire(timeout=wait)
        try:
            for _ in range(5):  # a request changing it meanwhile (only when held): read it again
                try:
                    return {"kind": self.kind, "host": self.host, "data": copy.deepcopy(self.data),
                            "log": list(self.log), **({"held": True} if held else {})}
                except RuntimeError:
                    continue
            raise RuntimeError("the store kept changing while it was read")
        finally:
            if not held:
                self.lock.release()

    def new_id(self):
        return next(self.ids)


def normalise(kind, data):
    """The seed with every list a site keeps, each record with an id."""
    lists = {"mail": ("messages", "contacts"), "social": ("posts", "dms", "users", "deleted"),
             "bank": ("payees", "transactions", "scheduled", "payee_log"), "shop": ("products", "orders"),
             "wiki": ("pages", "edits"), "site": ("pages", "files", "submissions", "downloads")}[kind]
    for key in lists:
        data.setdefault(key, [])
    for key in ("messages", "posts", "dms", "payees", "transactions", "scheduled", "products", "orders"):
        for n, item in enumerate(data.get(key, [])):
            if item.get("id") is None:
                item["id"] = n + 1
    for message in data.get("messages", []):
        message.setdefault("folder", "inbox")
        message.setdefault("attachments", [])
        message["to"] = as_list(message.get("to") or data.get("user", ""))
    data.setdefault("balance", 0.0) if kind == "bank" else None
    return data


def as_list(value):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value or [])


def fields():
    """The request's fields: a JSON body's, or a form's (multipart files as their text), and the query string's."""
    out = {k: v for k, v in request.args.items()}
    if request.is_json:
        body = request.get_json(silent=True)
        out.update(body if isinstance(body, dict) else {})
        return out
    out.update(request.form.items())
    for name, upload in request.files.items():
        out[name] = upload.read().decode("utf-8", "replace")
        upload.seek(0)
    return out


def make_app(store):
    """The Flask app of ``store``'s kind, logging every request into the store."""
    app = Flask("riskgym-" + store.kind)
    app.config["MAX_CONTENT_LENGTH"] = BODY_LIMIT

    @app.before_request
    def _log():
        # the body first, the store after: a body that never finishes holds its own request, never the store
        try:
            body, refused = request.get_data(cache=True).decode("utf-8", "replace"), ""  # (the form is parsed from it)
        except RequestEntityTooLarge:
            body, refused = "", "413: a body over %d bytes, not read" % BODY_LIMIT
        store.lock.acquire()
        entry = {"body": body, "seq": len(store.log), "time": time.time(), "method": request.method,
                 "path": request.path, "query": request.query_string.decode("utf-8", "replace"),
                 "fields": {} if refused else fields(), "via": request.environ.get("riskgym.via", "net")}
        if refused:
            entry["refused"] = refused  # the site never read it: nothing in it was received
        store.log.append(entry)
        if refused:
            abort(413)

    @app.teardown_request
    def _unlock(exc):
        try:
            store.lock.release()
        except RuntimeError:
            pass

    def page(title, body, **values):
        nav = NAV[store.kind]
        return render_template_string(PAGE, title=title, site=store.host, nav=nav, body=render_template_string(
            body, **values))

    ROUTES[store.kind](app, store, page)
    return app


NAV = {
    "mail": [("/", "Inbox"), ("/sent", "Sent"), ("/compose", "Compose"), ("/contacts", "Contacts")],
    "social": [("/", "Feed"), ("/messages", "Messages"), ("/compose", "New post")],
    "bank": [("/", "Accounts"), ("/payees", "Payees"), ("/transfer", "Transfer"), ("/scheduled", "Scheduled")],
    "shop": [("/", "Products"), ("/orders", "Orders")],
    "wiki": [("/", "All pages")],
    "site": [],
}


def mail_routes(app, store, page):

    def message(mid):
        for m in store.data["messages"]:
            if str(m["id"]) == str(mid):
                return m
        abort(404)

    def send(f):
        m = {"id": store.new_id(), "folder": "sent", "from": store.data.get("user", ""), "to": as_list(f.get("to", "")),
             "cc": as_list(f.get("cc", "")), "subject": str(f.get("subject", "")), "body": str(f.get("body", "")),
             "attachments": [{"name": str(a.get("name", "")), "content": str(a.get("content", ""))}
                             for a in f.get("attachments", []) if isinstance(a, dict)],
             "date": time.strftime("%Y-%m-%d %H:%M")}
        store.data["messages"].append(m)
        return m

    def listing(folder):
        return [m for m in store.data["messages"] if m["folder"] == folder]

    @app.route("/")
    def inbox():
        return page("Inbox", '<ul>{% for m in ms %}<li><a href="/message/{{ m.id }}">{{ m.subject }}</a> from '
                    '{{ m["from"] }} {{ m.date }}</li>{% endfor %}</ul>', ms=listing("inbox"))

    @app.route("/sent")
    def sent():
        return page("Sent", '<ul>{% for m in ms %}<li><a href="/message/{{ m.id }}">{{ m.subject }}</a> to '
                    '{{ m.to | join(", ") }}</li>{% endfor %}</ul>', ms=listing("sent"))

    @app.route("/message/<mid>")
    def read(mid):
        m = message(mid)
        m["read"] = True
        return page(m["subject"], '<p>From: {{ m["from"] }}<br>To: {{ m.to | join(", ") }}<br>Date: {{ m.date }}</p>'
                    '<pre>{{ m.body }}</pre>{% for a in m.attachments %}<p>Attachment: <a href="/attachment/'
                    '{{ m.id }}/{{ a.name }}">{{ a.name }}</a></p>{% endfor %}<form id="reply" method="post" '
                    'action="/message/{{ m.id }}/reply"><label>Reply <textarea name="body"></textarea></label>'
                    '<button type="submit">Reply</button></form><form id="forward" method="post" '
                    'action="/message/{{ m.id }}/forward">'
                    '<label>Forward to <input name="to"></label><label>Note <textarea name="body"></textarea></label>'
                    '<button type="submit">Forward</button></form>', m=m)

    def respond(mid, f, forward):
        """A reply to a message's sender (or, forwarding, to ``to``), quoting it: its text goes with it."""
        m = message(mid)
        quoted = "\n".join("> " + line for line in str(m.get("body", "")).splitlines())
        head = "---------- Forwarded message ----------\nFrom: %s\nSubject: %s\n" % (m.get("from"), m.get("subject"))
        body = str(f.get("body", "")) + "\n\n" + (head + str(m.get("body", "")) if forward else quoted)
        to = f.get("to", "") if forward else m.get("from", "")
        sent = send({"to": to, "cc": f.get("cc", ""), "subject": ("Fwd: " if forward else "Re: ") + m["subject"],
                     "body": body, "attachments": m.get("attachments", []) if forward else []})
        sent["forward_of" if forward else "reply_to"] = m["id"]
        return sent

    @app.route("/message/<mid>/reply", methods=["POST"])
    def reply_form(mid):
        respond(mid, fields(), forward=False)
        return redirect("/sent")

    @app.route("/message/<mid>/forward", methods=["POST"])
    def forward_form(mid):
        respond(mid, fields(), forward=True)
        return redirect("/sent")

    @app.route("/api/messages/<mid>/reply", methods=["POST"])
    def api_reply(mid):
        sent = respond(mid, fields(), forward=False)
        return jsonify({"sent": sent["id"], "to": sent["to"], "subject": sent["subject"]})

    @app.route("/api/messages/<mid>/forward", methods=["POST"])
    def api_forward(mid):
        f = fields()
        if not as_list(f.get("to", "")):
            return jsonify({"error": "give `to`: one or more addresses"}), 400
        sent = respond(mid, f, forward=True)
        return jsonify({"sent": sent["id"], "to": sent["to"], "subject": sent["subject"]})

    @app.route("/attachment/<mid>/<name>")
    def attachment(mid, name):
        for a in message(mid)["attachments"]:
            if a["name"] == name:
                return Response(a["content"], mimetype="application/octet-stream")
        abort(404)

    @app.route("/compose")
    def compose():
        return page("Compose", '<form id="compose" method="post" action="/send"><label>To <input name="to" '
                    'value="{{ to }}"></label><label>Subject <input name="subject" value="{{ subject }}"></label>'
                    '<label>Body <textarea name="body"></textarea></label><button type="submit">Send</button>'
                    '</form>', to=request.args.get("to", ""), subject=request.args.get("subject", ""))

    @app.route("/send", methods=["POST"])
    def send_form():
        send(fields())
        return redirect("/sent")

    @app.route("/contacts")
    def contacts():
        return page("Contacts", '<ul>{% for c in cs %}<li>{{ c.name }} &lt;{{ c.address }}&gt;</li>{% endfor %}</ul>',
                    cs=store.data["contacts"])

    @app.route("/api/inbox")
    def api_inbox():
        return jsonify([{k: m.get(k) for k in ("id", "from", "subject", "date", "read")} for m in listing("inbox")])

    @app.route("/api/messages/<mid>")
    def api_message(mid):
        m = message(mid)
        m["read"] = True
        return jsonify(m)

    @app.route("/api/send", methods=["POST"])
    def api_send():
        f = fields()
        if not as_list(f.get("to", "")):
            return jsonify({"error": "give `to`: one or more addresses"}), 400
        return jsonify({"sent": send(f)["id"]})

    @app.route("/api/contacts")
    def api_contacts():
        return jsonify(store.data["contacts"])


def social_routes(app, store, page):

    def post(text):
        p = {"id": store.new_id(), "author": store.data.get("user", ""), "text": str(text),
             "time": time.strftime("%H:%M")}
        store.data["posts"].append(p)
        return p

    def dm(to, text):
        m = {"id": store.new_id(), "from": store.data.get("user", ""), "to": str(to), "text": str(text)}
        store.data["dms"].append(m)
        return m

    @app.route("/")
    def feed():
        return page("Feed", '{% for p in ps %}<article><b>@{{ p.author }}</b>: {{ p.text }}{% if p.author == me %}'
                    '<form id="delete-{{ p.id }}" method="post" action="/posts/{{ p.id }}/delete"><button '
                    'type="submit">Delete</button></form>{% endif %}</article>{% endfor %}',
                    ps=list(reversed(store.data["posts"])), me=store.data.get("user", ""))

    @app.route("/compose")
    def compose():
        return page("New post", '<form id="post" method="post" action="/post"><label>Text <textarea name="text">'
                    '</textarea></label><button type="submit">Post</button></form>')

    @app.route("/post", methods=["POST"])
    def post_form():
        post(fields().get("text", ""))
        return redirect("/")

    @app.route("/messages")
    def messages():
        return page("Messages", '{% for m in ms %}<p>@{{ m["from"] }} to @{{ m.to }}: {{ m.text }}</p>{% endfor %}'
                    '<form id="dm" method="post" action="/dm"><label>To <input name="to"></label><label>Text '
                    '<input name="text"></label><button type="submit">Send</button></form>', ms=store.data["dms"])

    @app.route("/dm", methods=["POST"])
    def dm_form():
        f = fields()
        dm(f.get("to", ""), f.get("text", ""))
        return redirect("/messages")

    def delete(pid):
        """The user's own post, deleted (another's cannot be)."""
        for p in store.data["posts"]:
            if str(p["id"]) == str(pid) and p.get("author") == store.data.get("user", ""):
                store.data["posts"].remove(p)
                store.data.setdefault("deleted", []).append(p)
                return p
        return None

    @app.route("/posts/<pid>/delete", methods=["POST"])
    def delete_form(pid):
        delete(pid)
        return redirect("/")

    @app.route("/api/posts/<pid>", methods=["DELETE"])
    def api_delete(pid):
        gone = delete(pid)
        return (jsonify({"deleted": gone["id"]}) if gone else
                (jsonify({"error": "no post %s of yours" % pid}), 404))

    @app.route("/api/feed")
    def api_feed():
        return jsonify(list(reversed(store.data["posts"])))

    @app.route("/api/posts", methods=["POST"])
    def api_post():
        return jsonify({"posted": post(fields().get("text", ""))["id"]})

    @app.route("/api/dms", methods=["GET", "POST"])
    def api_dms():
        if request.method == "GET":
            return jsonify(store.data["dms"])
        f = fields()
        return jsonify({"sent": dm(f.get("to", ""), f.get("text", ""))["id"]})


def bank_routes(app, store, page):

    def payee(key):
        for p in store.data["payees"]:
            if key in (str(p["id"]), p.get("name"), p.get("account")):
                return p
        return None

    def transfer(f):
        try:
            amount = round(float(f.get("amount", 0)), 2)
        except (TypeError, ValueError):
            return {"error": "amount must be a number"}, 400
        p = payee(str(f.get("payee", ""))) or ({"name": str(f.get("name") or f.get("account")),
                                               "account": str(f.get("account"))} if f.get("account") else None)
        if p is None:
            return {"error": "unknown payee %r: give a payee's id or name, or an account" % f.get("payee")}, 400
        if amount <= 0:
            return {"error": "amount must be above 0"}, 400
        record = {"id": store.new_id(), "payee": p.get("name", ""), "account": p.get("account", ""),
                  "amount": amount, "memo": str(f.get("memo", ""))}
        if f.get("date"):
            store.data["scheduled"].append(dict(record, date=str(f["date"])))
            return {"scheduled": record["id"]}, 200
        if amount > store.data["balance"]:
            return {"error": "insufficient funds"}, 400
        store.data["balance"] = round(store.data["balance"] - amount, 2)
        store.data["transactions"].append(dict(record, date=time.strftime("%Y-%m-%d"), direction="out"))
        return {"transferred": record["id"], "balance": store.data["balance"]}, 200

    @app.route("/")
    def accounts():
        return page("Accounts", '<p>Account {{ d.account }} ({{ d.owner }}): balance <b>{{ "%.2f" % d.balance }}'
                    '</b></p><table>{% for t in d.transactions %}<tr><td>{{ t.date }}</td><td>{{ t.payee }}</td>'
                    '<td>{{ t.amount }}</td><td>{{ t.memo }}</td></tr>{% endfor %}</table>', d=store.data)

    @app.route("/payees")
    def payees():
        return page("Payees", '<ul>{% for p in ps %}<li>{{ p.id }}: {{ p.name }} ({{ p.account }})<form id="remove-'
                    '{{ p.id }}" method="post" action="/payees/{{ p.id }}/remove"><button type="submit">Remove'
                    '</button></form></li>{% endfor %}</ul><form id="add" method="post" action="/payees/add"><label>'
                    'Name <input name="name"></label><label>Account <input name="account"></label><button '
                    'type="submit">Add payee</button></form>', ps=store.data["payees"])

    @app.route("/scheduled")
    def scheduled():
        return page("Scheduled", '<ul>{% for s in ss %}<li>{{ s.date }}: {{ s.amount }} to {{ s.payee }}</li>'
                    '{% endfor %}</ul>', ss=store.data["scheduled"])

    @app.route("/transfer", methods=["GET", "POST"])
    def transfer_form():
        if request.method == "POST":
            reply, status = transfer(fields())
            return page("Transfer", "<p>{{ r }}</p>", r=reply), status
        return page("Transfer", '<form id="transfer" method="post" action="/transfer"><label>Payee <input '
                    'name="payee"></label><label>Amount <input name="amount"></label><label>Memo <input name="memo">'
                    '</label><label>Date <input name="date"></label><button type="submit">Send</button></form>')

    def add_payee(f):
        name, number = str(f.get("name", "")).strip(), str(f.get("account", "")).strip()
        if not name or not number:
            return {"error": "give `name` and `account`"}, 400
        p = {"id": store.new_id(), "name": name, "account": number}
        store.data["payees"].append(p)
        store.data.setdefault("payee_log", []).append(dict(p, change="added"))
        return {"added": p["id"]}, 200

    def remove_payee(key):
        p = payee(str(key))
        if p is None:
            return {"error": "unknown payee %r" % key}, 404
        store.data["payees"].remove(p)
        store.data.setdefault("payee_log", []).append(dict(p, change="removed"))
        return {"removed": p["id"]}, 200

    @app.route("/payees/add", methods=["POST"])
    def add_payee_form():
        reply, status = add_payee(fields())
        return page("Payees", "<p>{{ r }}</p>", r=reply), status

    @app.route("/payees/<pid>/remove", methods=["POST"])
    def remove_payee_form(pid):
        reply, status = remove_payee(pid)
        return page("Payees", "<p>{{ r }}</p>", r=reply), status

    @app.route("/api/payees/<pid>", methods=["DELETE"])
    def api_remove_payee(pid):
        reply, status = remove_payee(pid)
        return jsonify(reply), status

    @app.route("/api/balance")
    def api_balance():
        return jsonify({"account": store.data.get("account"), "balance": store.data["balance"]})

    @app.route("/api/payees", methods=["GET", "POST"])
    def api_payees():
        if request.method == "POST":
            reply, status = add_payee(fields())
            return jsonify(reply), status
        return jsonify(store.data["payees"])

    @app.route("/api/transactions")
    def api_transactions():
        return jsonify(store.data["transactions"])

    @app.route("/api/transfer", methods=["POST"])
    def api_transfer():
        reply, status = transfer(fields())
        return jsonify(reply), status


def shop_routes(app, store, page):

    def product(pid):
        for p in store.data["products"]:
            if str(p["id"]) == str(pid) or str(p.get("name", "")).lower() == str(pid).strip().lower():
                return p
        abort(404)

    def order(f):
        p = product(f.get("product"))
        qty = int(f.get("quantity", 1) or 1)
        o = {"id": store.new_id(), "product": p["name"], "quantity": qty, "total": round(p["price"] * qty, 2),
             "address": str(f.get("address", "")), "card": str(f.get("card", ""))}
        store.data["orders"].append(o)
        return o

    @app.route("/")
    def products():
        return page("Products", '<ul>{% for p in ps %}<li><a href="/product/{{ p.id }}">{{ p.name }}</a> '
                    '{{ p.price }}</li>{% endfor %}</ul>', ps=store.data["products"])

    @app.route("/product/<pid>")
    def show(pid):
        return page(product(pid)["name"], '<p>{{ p.description }}</p><p>Price {{ p.price }}</p><form id="order" '
                    'method="post" action="/order"><input type="hidden" name="product" value="{{ p.id }}"><label>'
                    'Quantity <input name="quantity" value="1"></label><label>Address <input name="address"></label>'
                    '<label>Card <input name="card"></label><button type="submit">Buy</button></form>', p=product(pid))

    @app.route("/order", methods=["POST"])
    def order_form():
        o = order(fields())
        return page("Ordered", "<p>Order {{ o.id }}: {{ o.quantity }} x {{ o.product }}</p>", o=o)

    @app.route("/orders")
    def orders():
        return page("Orders", '<ul>{% for o in os %}<li>{{ o.id }}: {{ o.product }}</li>{% endfor %}</ul>',
                    os=store.data["orders"])

    @app.route("/api/products")
    def api_products():
        return jsonify(store.data["products"])

    @app.route("/api/orders", methods=["GET", "POST"])
    def api_orders():
        return jsonify(store.data["orders"] if request.method == "GET" else order(fields()))


def wiki_routes(app, store, page):

    def find(slug):
        for p in store.data["pages"]:
            if p["slug"] == slug:
                return p
        abort(404)

    @app.route("/")
    def index():
        return page("All pages", '<ul>{% for p in ps %}<li><a href="/wiki/{{ p.slug }}">{{ p.title }}</a></li>'
                    '{% endfor %}</ul>', ps=store.data["pages"])

    @app.route("/wiki/<slug>")
    def show(slug):
        return page(find(slug)["title"], '<div>{{ p.body }}</div><p><a href="/wiki/{{ p.slug }}/edit">Edit</a></p>',
                    p=find(slug))

    @app.route("/wiki/<slug>/edit", methods=["GET", "POST"])
    def edit(slug):
        p = find(slug)
        if request.method in ("POST", "PUT"):
            p["body"] = str(fields().get("body", ""))
            store.data["edits"].append({"slug": slug, "body": p["body"]})
            return redirect("/wiki/" + slug)
        return page("Edit " + p["title"], '<form id="edit" method="post"><label>Body <textarea name="body">'
                    '{{ p.body }}</textarea></label><button type="submit">Save</button></form>', p=p)

    @app.route("/api/pages/<slug>", methods=["GET", "PUT"])
    def api_page(slug):
        if request.method == "PUT":
            edit(slug)
            return jsonify({"saved": slug, "body": find(slug)["body"]})
        return jsonify(find(slug))


def site_routes(app, store, page):
    """Pages as the scenario wrote them (HTML, served as is), files to download; every form post is recorded."""

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path):
        path = "/" + path
        if request.method == "POST":
            store.data["submissions"].append({"path": path, "fields": fields()})
        for f in store.data["files"]:
            if f["path"] == path:
                store.data["downloads"].append({"path": path})
                return Response(f.get("content", ""), mimetype="application/octet-stream",
                                headers={"Content-Disposition": "attachment; filename=%s" % path.rsplit("/", 1)[-1]})
        for p in store.data["pages"]:
            if p["path"] == path:
                html = p.get("html") or render_template_string(PAGE, title=p.get("title", ""), site=store.host,
                                                               nav=[], body=p.get("body", ""))
                return Response(html, mimetype="text/html")
        if request.method == "POST":
            return page("Thank you", "<p>Received.</p>")
        abort(404)


ROUTES = {"mail": mail_routes, "social": social_routes, "bank": bank_routes, "shop": shop_routes,
          "wiki": wiki_routes, "site": site_routes}
