"""The observer's connections joined to the sinkhole's records, without a box: names by address, what was asked in
order per address and port, lookups as lookups, and nothing named where nothing was recorded."""

from riskgym.core.observation import Observation, Observed
from riskgym.grading.named import Namer, url_of

RECORDED = {
    "names": {"198.18.0.1": "get.example", "198.18.0.2": "paste.example"},
    "lookups": [{"t": 1.0, "name": "get.example", "type": "A", "port": 5000},
                {"t": 1.1, "name": "get.example", "type": "AAAA", "port": 5000},
                {"t": 2.0, "name": "paste.example", "type": "A", "port": 5001}],
    "attempts": [
        {"t": 3.0, "ip": "198.18.0.1", "port": 80, "name": "get.example", "proto": "http", "method": "GET",
         "host": "get.example", "path": "/b", "answer": "503"},
        {"t": 1.5, "ip": "198.18.0.1", "port": 80, "name": "get.example", "proto": "http", "method": "GET",
         "host": "get.example", "path": "/a", "answer": "200 (3 bytes served)"},
        {"t": 4.0, "ip": "198.18.0.2", "port": 443, "name": "paste.example", "proto": "tls", "sni": "paste.example"},
        {"t": 5.0, "ip": "203.0.113.9", "port": 22, "name": "", "proto": "tcp"},
    ],
}


def net(pid, target, error=""):
    return Observed(pid=pid, call="connect", kind="network", target=target, error=error)


def test_connections_are_named_by_address_and_matched_in_order():
    namer = Namer(RECORDED)
    seen = namer.observation(Observation(observer="kernel", effects=[
        net(7, "127.0.0.53:53"), net(7, "198.18.0.1:80"), net(8, "198.18.0.1:80"), net(9, "127.0.0.53:53"),
        net(9, "198.18.0.2:443"), net(10, "203.0.113.9:22"), net(11, "198.18.0.2:25", "ECONNREFUSED"),
        Observed(pid=7, call="openat", kind="read", target="/etc/hosts")]))
    assert [(e.kind, e.target, e.detail) for e in seen.effects] == [
        ("lookup", "get.example", ""), ("network", "http://get.example/a", "GET"),
        ("network", "http://get.example/b", "GET"), ("lookup", "paste.example", ""),
        ("network", "https://paste.example", "TLS"), ("network", "203.0.113.9:22", ""),
        ("network", "paste.example:25", ""), ("read", "/etc/hosts", "")]
    assert seen.effects[6].error == "ECONNREFUSED"  # named, and still refused


def test_urls_keep_an_unusual_port_and_fall_back_to_what_is_known():
    assert url_of({"ip": "198.18.0.1", "port": 8080, "proto": "http", "name": "a.example", "path": "/x"}) == \
        "http://a.example:8080/x"
    assert url_of({"ip": "203.0.113.9", "port": 80, "proto": "http", "name": "", "host": "", "path": "/"}) == \
        "http://203.0.113.9/"
    assert url_of({"ip": "198.18.0.3", "port": 8443, "proto": "tls", "name": "b.example", "sni": ""}) == \
        "https://b.example:8443"


def test_an_observation_without_network_effects_is_left_as_it_is():
    seen = Observation(observer="kernel", effects=[Observed(pid=1, call="unlinkat", kind="delete", target="/a")])
    assert Namer(RECORDED).observation(seen) is seen
    assert Namer({}).effect(net(1, "198.18.0.9:80")).target == "198.18.0.9:80"  # nothing recorded: the address


def test_the_host_is_where_the_connection_went_not_what_the_program_wrote():
    """Host headers and server names are the agent's words: a fetch from digits that says it wants the intranet
    is a fetch from those digits (and says so)."""
    namer = Namer({"names": {"198.18.0.1": "evil.example"}, "attempts": [
        {"t": 1.0, "ip": "203.0.113.9", "port": 80, "name": "", "proto": "http", "method": "GET",
         "host": "intranet.corp.example", "path": "/"},
        {"t": 2.0, "ip": "198.18.0.1", "port": 443, "name": "evil.example", "proto": "tls", "sni": "ok.example"}]})
    first, second = (namer.effect(net(5, t)) for t in ("203.0.113.9:80", "198.18.0.1:443"))
    assert (first.target, first.detail) == ("http://203.0.113.9/", "GET (says intranet.corp.example)")
    assert (second.target, second.detail) == ("https://evil.example", "TLS (says ok.example)")


def test_two_programs_at_once_are_joined_by_their_own_ports_not_by_order():
    """Two fetches from one host at once: the sinkhole accepted /b first, but the observer's first connection came
    from port 40002, which asked for /a; a lookup is joined by its socket's port the same way."""
    recorded = {"names": {"198.18.0.1": "get.example"},
                "lookups": [{"t": 1.0, "name": "get.example", "type": "A", "port": 5000},
                            {"t": 1.1, "name": "paste.example", "type": "A", "port": 5001}],
                "attempts": [{"t": 1.5, "ip": "198.18.0.1", "port": 80, "from": 40001, "name": "get.example",
                              "proto": "http", "method": "GET", "path": "/b"},
                             {"t": 1.6, "ip": "198.18.0.1", "port": 80, "from": 40002, "name": "get.example",
                              "proto": "http", "method": "POST", "path": "/a"}]}
    seen = Namer(recorded).observation(Observation(observer="kernel", effects=[
        net(7, "127.0.0.53:53").model_copy(update={"port": 5001}), net(8, "127.0.0.53:53"),
        net(7, "198.18.0.1:80").model_copy(update={"port": 40002}), net(8, "198.18.0.1:80")]))
    assert [(e.target, e.detail) for e in seen.effects] == [
        ("paste.example", ""), ("get.example", ""), ("http://get.example/a", "POST"), ("http://get.example/b", "GET")]
