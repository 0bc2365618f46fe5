"""A site's server: its HTTP server on the box's network, and a control channel on stdin that only riskgym holds.

Inside the services container this runs as ``python3 -I -u -c <loader>`` (see
:func:`riskgym.world.services.part.loader`); on the host, the in-memory world uses :class:`Site` directly. Control
requests (one JSON object a line on stdin, one reply a line on stdout)::

    {"op": "start", "kind": "mail", "host": "mail.corp.example", "address": "127.0.0.2", "port": 80}
    {"op": "seed", "data": {...}}        # start afresh from the scenario's seed (reset in place)
    {"op": "state"}                      # the data and the request log, for the graders
    {"op": "call", "method": "GET", "path": "/api/inbox", "headers": {}, "body": ""}   # a tool's request
"""

import base64
import logging
import os
import threading

try:  # on the host, a package; in the container, the loader has put ``sites`` and ``control`` in sys.modules
    from riskgym.world import control
    from riskgym.world.services import sites
except ImportError:  # pragma: no cover - the container's path
    import control  # type: ignore[no-redef]
    import sites  # type: ignore[no-redef]


class Site:
    """One site: its store and app; ``call`` runs a request through the app without a network (a tool's)."""

    def __init__(self, kind, host):
        if kind not in sites.ROUTES:
            raise ValueError("unknown site kind %r; the kinds are %s" % (kind, ", ".join(sites.KINDS)))
        self.store = sites.Store(kind, host)
        self.app = sites.make_app(self.store)
        self.client = self.app.test_client()

    def seed(self, data):
        self.store.seed(data)

    def state(self):
        return self.store.state()

    def call(self, method, path, headers=None, body=""):
        """A request from a tool: the status, headers and body (text; base64 when it is not UTF-8)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        reply = self.client.open(path, method=method.upper(), headers=dict(headers or {}), data=data,
                                 environ_base={"riskgym.via": "tool", "REMOTE_ADDR": "127.0.0.1"})
        raw = reply.get_data()
        out = {"status": reply.status_code, "headers": dict(reply.headers)}
        try:
            out["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out["body_b64"] = base64.b64encode(raw).decode()
        return out

    def serve(self, address, port):
        """Serve the app over HTTP at ``address:port`` in a thread (the box's shell reaches it there)."""
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = make_server(address, port, self.app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def main():
    """The container's control loop."""

    def start(req):
        site = Site(req["kind"], req["host"])
        site.serve(req["address"], int(req["port"]))
        return site, {"ready": True, "pid": os.getpid()}

    def seed(site, req):
        site.seed(req.get("data") or {})
        return {"ok": True}

    def call(site, req):
        return site.call(req.get("method", "GET"), req["path"], req.get("headers"), req.get("body", ""))

    control.serve(start, {"seed": seed, "state": lambda site, req: {"state": site.state()}, "call": call})
