"""The control loop of a container that riskgym speaks to over its stdin (a service, the sinkhole).

One JSON request a line in, one reply a line out, with the request's ``id``: the other end of
:class:`riskgym.world.channel.Channel`. Standard library only: it runs inside the container, loaded beside the
server that uses it.
"""

import json
import sys


def serve(start, ops):
    """Answer requests until stdin ends.

    ``start(request)`` makes the server and returns it with the reply; ``ops`` maps each other op to
    ``fn(server, request) -> reply``. A request that fails is answered with its error and the loop goes on.
    """
    made = None
    for line in sys.stdin:
        req = json.loads(line)
        try:
            op = req.get("op")
            if op == "start":
                made, reply = start(req)
            elif made is None:
                reply = {"error": "not started"}
            elif op in ops:
                reply = ops[op](made, req)
            else:
                reply = {"error": "unknown op %r" % op}
        except Exception as exc:  # a bad request must not end the loop
            reply = {"error": "%s: %s" % (type(exc).__name__, exc)}
        reply["id"] = req.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
