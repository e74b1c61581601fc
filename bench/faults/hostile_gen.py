"""The hostile requests of ``bench.faults.hostile``, written from the contract alone.

A grammar of requests (PROTOCOL.md's JSON-RPC messages and EVENTS.md's events) whose
holes hypothesis fills: which field, which hostile value, valid neighbours in the same
batch, how the bytes are spelled. Every generated line says what the contract demands
of it: ``must_refuse`` when PROTOCOL.md or EVENTS.md refuses it whatever else happens
(a number past 40 characters, a time before 1900, a duplicate key...), else the daemon
may store it or refuse it, but never partly and never by dying.

Event ids hold the marker ``@N@`` (``N`` the event's place in the probe): the runner
replaces it with a number unique in the run, because a strategy must not depend on
outside state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "BATCH_SHAPES",
    "LINE_CLASSES",
    "MARK",
    "SHAPES",
    "Line",
    "Probe",
    "probes",
    "render",
]

MARK = "@{}@"
"""Placeholder in event ids and request ids, replaced by the runner."""
_RAW = "\u0001raw{}\u0001"
SOURCE = "hostile/fuzz"
_TIME = "2024-03-01T12:00:00Z"


@dataclass
class Line:
    """One line to send and what the contract says of it.

    ``keys``: the (source, id) of every event it carries (ids still holding ``@N@``).
    ``appends``: request id (as sent, JSON text) -> the keys of that ``append``, for the
    requests whose answer can be matched (an error answer means none of them is stored).
    ``must_refuse``: every request in it must be answered with an error and nothing in
    it stored. ``batch_over``: a batch past the member limit, answered by one error.
    ``newline``: False for a line sent without its ``\\n`` (the runner decides what then).
    """

    blob: bytes
    keys: list[tuple[str, str]] = field(default_factory=list)
    appends: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    must_refuse: bool = False
    requests: int = 1
    batch_over: bool = False
    id_refused: bool = False
    max_subscriptions: int | None = None
    tail_keys: list[tuple[str, str]] = field(default_factory=list)
    newline: bool = True


@dataclass
class Probe:
    """The lines of one hostile request sent one after another on one connection;
    ``shape``: which of the class's shapes it is (``BATCH_SHAPES`` for ``batches``),
    empty for a class without named shapes."""

    cls: str
    what: str
    lines: list[Line]
    shape: str = ""


# ------------------------------------------------------------------ the grammar


def render(value: Any, raw: list[str]) -> str:
    """``value`` as JSON with each ``_RAW`` placeholder string replaced by raw text."""
    text = json.dumps(value, separators=(",", ":"))
    for n, fragment in enumerate(raw):
        text = text.replace(json.dumps(_RAW.format(n)), fragment)
    return text


def _hole(raw: list[str], fragment: str) -> str:
    raw.append(fragment)
    return _RAW.format(len(raw) - 1)


def rpc(method: str, params: Any, request_id: Any) -> dict[str, Any]:
    """A JSON-RPC 2.0 request object."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


_DATA: dict[str, dict[str, Any]] = {
    "fill": {"symbol": "EURUSD", "side": "buy", "quantity": "1", "price": "1.1", "fee": "0.1"},
    "mark": {"prices": {"EURUSD": "1.2"}},
    "cash": {"amount": "100", "kind": "deposit"},
    "limits": {"daily_loss_limit": "50", "max_open_positions": 3, "timezone": "UTC"},
    "instrument": {"symbol": "EURUSD", "multiplier": "1", "tick_size": "0.0001"},
    "order": {"order_id": "o1", "symbol": "EURUSD", "side": "buy", "quantity": "1",
              "order_type": "limit", "limit_price": "1.1"},
    "signal": {"signal_id": "s1", "strategy": "sma", "symbol": "EURUSD", "side": "long",
               "confidence": "0.5", "expires_at": "2024-03-02T00:00:00Z"},
    "journal": {"text": "hello", "tags": ["a"]},
}

# Every decimal field of EVENTS.md, by type, with a path to it inside ``data``.
_DECIMAL_FIELDS: list[tuple[str, tuple[str, ...]]] = [
    ("fill", ("quantity",)), ("fill", ("price",)), ("fill", ("fee",)),
    ("fill", ("multiplier",)), ("cash", ("amount",)), ("mark", ("prices", "EURUSD")),
    ("limits", ("daily_loss_limit",)), ("instrument", ("multiplier",)),
    ("instrument", ("tick_size",)), ("instrument", ("strike",)),
    ("order", ("quantity",)), ("order", ("limit_price",)), ("signal", ("entry_price",)),
]


def event(kind: str, n: int, account: str, data: dict[str, Any] | None = None,
          time: str = _TIME) -> dict[str, Any]:
    """A valid event of ``kind`` (its id ``@n@``), data replaced when given."""
    return {"id": MARK.format(n), "source": SOURCE, "type": kind, "time": time,
            "account": account, "data": json.loads(json.dumps(_DATA[kind]))
            if data is None else data}


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value


def _keys(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(SOURCE, str(e["id"])) for e in events if isinstance(e, dict)
            and isinstance(e.get("id"), str) and e.get("source") == SOURCE]


def append_line(events: list[dict[str, Any]], raw: list[str] | None = None,
                must_refuse: bool = False, request_id: int = 1) -> Line:
    """One ``append`` of ``events`` as a line; its answer is matched by ``request_id``."""
    text = render(rpc("append", {"events": events}, request_id), raw or [])
    keys = _keys(events)
    return Line(text.encode(), keys, {str(request_id): keys}, must_refuse)


@st.composite
def _neighbours(draw: st.DrawFn, account: str, start: int) -> list[dict[str, Any]]:
    """0-3 valid events to stand beside a hostile one in the same append."""
    kinds = draw(st.lists(st.sampled_from(["fill", "mark", "cash", "journal"]), max_size=3))
    return [event(k, start + i, account) for i, k in enumerate(kinds)]


def _account(draw: st.DrawFn, prefix: str) -> str:
    return f"{prefix}-{draw(st.integers(0, 7))}"


# ------------------------------------------------------------------ numbers


@st.composite
def bad_number(draw: st.DrawFn) -> str:
    """Raw JSON number text that PROTOCOL.md refuses wherever it stands: more than 40
    characters, or an exponent beyond +-40."""
    sign = draw(st.sampled_from(["", "-"]))
    shape = draw(st.sampled_from(["exp", "exp", "digits", "fraction", "both"]))
    if shape == "exp":
        exponent = draw(st.integers(41, 10**9) | st.sampled_from([41, 400, 5000, 1000000,
                                                                  999999999]))
        exp_sign = draw(st.sampled_from(["", "+", "-"]))
        mantissa = draw(st.sampled_from(["1", "9", "1.5", "0", "123456789"]))
        return f"{sign}{mantissa}{draw(st.sampled_from(['e', 'E']))}{exp_sign}{exponent}"
    if shape == "digits":
        count = draw(st.integers(41, 100_000) | st.sampled_from([41, 4301, 100_000]))
        return sign + "9" * count
    if shape == "fraction":
        count = draw(st.integers(40, 100_000) | st.sampled_from([40, 100_000]))
        return f"{sign}0." + "1" * count
    return f"{sign}1." + "0" * draw(st.integers(40, 5000)) + "e" + str(draw(
        st.integers(41, 10**6)))


@st.composite
def bad_decimal(draw: st.DrawFn) -> tuple[str, bool]:
    """A decimal outside EVENTS.md's bounds, as (raw JSON text, quoted?): more than 18
    places, an absolute value of 10^15 or more, or a number PROTOCOL.md refuses."""
    kind = draw(st.sampled_from(["number", "big", "places", "tiny", "issue"]))
    if kind == "number":
        text = draw(bad_number())
    elif kind == "big":
        text = draw(st.sampled_from(["1e15", "1E+15", "1000000000000000", "9e23",
                                     "900000000000000000000000", "1e23", "1e40",
                                     "999999999999999.9999999999999999999"]))
    elif kind == "places":
        text = "0." + "0" * draw(st.integers(18, 38)) + "1"
    elif kind == "tiny":
        text = draw(st.sampled_from(["1e-19", "1e-40", "1e-999999999", "-1e-999999999",
                                     "5E-30"]))
    else:
        text = draw(st.sampled_from(["1e999999999", "1e-999999999", "1" + "0" * 100_000,
                                     "0." + "3" * 100_000]))
    quoted = draw(st.booleans())
    return (json.dumps(text) if quoted else text), quoted


@st.composite
def numbers(draw: st.DrawFn) -> Probe:
    """Huge, long and exponent numbers in request ids, params and event fields."""
    where = draw(st.sampled_from(["id", "param", "field", "field", "field"]))
    raw: list[str] = []
    if where == "id":
        text = draw(bad_number() | st.sampled_from(["1e1000000", "1e5000", "1E400"]))
        method = draw(st.sampled_from(["health", "read", "append"]))
        events = [event("cash", 0, "hz-num")] if method == "append" else []
        blob = render(rpc(method, {"events": events} if events else None,
                          _hole(raw, text)), raw).encode()
        keys = _keys(events)
        return Probe("numbers", f"id {text[:40]}", [Line(blob, keys, must_refuse=True,
                                                         id_refused=True)])
    if where == "param":
        method, name = draw(st.sampled_from([
            ("read", "from_seq"), ("read", "limit"), ("query", "limit"), ("query", "offset"),
            ("query", "as_of"), ("subscribe", "from_seq")]))
        text = draw(bad_number())
        holes: dict[str, Any] = {"view": "balances"} if method == "query" else {}
        holes[name] = _hole(raw, text)
        blob = render(rpc(method, holes, 1), raw).encode()
        return Probe("numbers", f"{method}.{name} {text[:40]}", [Line(blob, must_refuse=True)])
    kind, path = draw(st.sampled_from(_DECIMAL_FIELDS))
    text, _ = draw(bad_decimal())
    account = _account(draw, "hz-num")
    bad = event(kind, 0, account)
    _set(bad["data"], path, _hole(raw, text))
    events = draw(_neighbours(account, 1))
    events.insert(draw(st.integers(0, len(events))), bad)
    return Probe("numbers", f"{kind}.{'.'.join(path)} {text[:40]}",
                 [append_line(events, raw, must_refuse=True)])


# ------------------------------------------------------------------ times

_BAD_TIMES = [
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z", "1900-01-01T00:30:00+01:00", "2199-12-31T23:30:00-01:00",
    "2024-03-01T12:00:00+24:00", "2024-03-01T12:00:00-25:00", "2024-03-01T12:00:00+14:60",
    "2024-03-01T12:00:00+99:99", "2024-03-01T12:00:00", "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-03-01T24:00:01Z",
    "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2024-03-01T12:00:00+0100",
    "\uff12\uff10\uff12\uff14-03-01T12:00:00Z", "2024-03-01T12:00:00Z ", "",
    "2024-03-01T12:00:00." + "9" * 100_000 + "Z", "yesterday", "1e999999999",
]
_EDGE_TIMES = [
    "1900-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "2199-12-31T23:59:59.999999Z",
    "1900-01-01T05:00:00+05:00", "2199-12-31T22:00:00-01:00", "2199-12-31T23:59:59+14:00",
    "1900-01-01T00:00:00-12:00", "2024-02-29T23:59:59.999999999Z", "2016-12-31T23:59:60Z",
]
_BAD_ZONES = ["America", "x" * 300, "Europe/Nowhere", "../../etc/passwd", "/etc/localtime",
              "UTC\u0000", "Etc/GMT+99", "", "America/" + "y" * 250, "Europe/../Europe/Paris"]
_AHEAD_ZONES = ["Pacific/Kiritimati", "Pacific/Auckland", "Asia/Tokyo", "Pacific/Tongatapu"]
_BEHIND_ZONES = ["Pacific/Niue", "America/Adak", "Etc/GMT+12", "Pacific/Pago_Pago"]
_BAD_DATES = ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01", "2024-02-30", "2024-1-1"]


@st.composite
def times(draw: st.DrawFn) -> Probe:
    """Calendar edges, bad offsets, bogus timezone names, zones far from UTC with edge
    times, in event ``time``, other timestamps, and query bounds."""
    shape = draw(st.sampled_from(["time", "time", "zone-edge", "zone-bad", "field",
                                  "query", "edge"]))
    account = _account(draw, "hz-time")
    if shape in ("time", "edge"):
        value = draw(st.sampled_from(_BAD_TIMES if shape == "time" else _EDGE_TIMES))
        kind = draw(st.sampled_from(["fill", "mark", "cash", "journal", "signal"]))
        events = draw(_neighbours(account, 1))
        events.insert(draw(st.integers(0, len(events))), event(kind, 0, account, time=value))
        return Probe("times", f"{kind}.time {value[:40]}",
                     [append_line(events, must_refuse=shape == "time")])
    if shape == "zone-bad":
        zone = draw(st.sampled_from(_BAD_ZONES))
        limits = event("limits", 0, account, {"timezone": zone})
        return Probe("times", f"timezone {zone[:40]!r}", [append_line([limits],
                                                                      must_refuse=True)])
    if shape == "zone-edge":
        # A zone far ahead of (or behind) UTC, then events at the last (first) instant of
        # the calendar the contract allows: every view's trading day must still work.
        ahead = draw(st.booleans())
        zone = draw(st.sampled_from(_AHEAD_ZONES if ahead else _BEHIND_ZONES))
        at = draw(st.sampled_from(["2199-12-31T23:59:59Z", "2199-12-31T23:59:59.999999Z",
                                   "2199-12-31T12:00:00Z"] if ahead else
                                  ["1900-01-01T00:00:00Z", "1900-01-01T11:59:59Z"]))
        kinds = draw(st.lists(st.sampled_from(["fill", "mark", "cash", "signal"]),
                              min_size=1, max_size=3))
        limits = event("limits", 0, account, {"timezone": zone, "daily_loss_limit": "1"})
        rest = [event(k, i + 1, account, time=at) for i, k in enumerate(kinds)]
        if draw(st.booleans()):
            return Probe("times", f"{zone} then {at}", [append_line([limits, *rest])])
        return Probe("times", f"{zone} then {at} (two appends)",
                     [append_line([limits]), append_line(rest)])
    if shape == "field":
        name, value = draw(st.sampled_from(
            [("expires_at", v) for v in _BAD_TIMES[:12]]
            + [("expiry", d) for d in _BAD_DATES]))
        if name == "expires_at":
            bad = event("signal", 0, account)
        else:
            bad = event("instrument", 0, account)
        bad["data"][name] = value
        return Probe("times", f"{name} {value[:40]}", [append_line([bad], must_refuse=True)])
    name = draw(st.sampled_from(["since", "until", "as_of", "as_of_time", "updated_since"]))
    value = draw(st.sampled_from(_BAD_TIMES))
    params = {"view": draw(st.sampled_from(["trades", "daily", "signals"])), name: value}
    # updated_since exists only on views with updated_at; both refusals are errors.
    blob = render(rpc("query", params, 1), []).encode()
    return Probe("times", f"query.{name} {value[:40]}", [Line(blob, must_refuse=True)])


# ------------------------------------------------------------------ ids


@st.composite
def ids(draw: st.DrawFn) -> Probe:
    """Request ids and event ids of every wrong shape."""
    raw: list[str] = []
    if draw(st.booleans()):
        bad = draw(st.sampled_from([
            "long", "fraction", "exponent", "twenty", "object", "array", "bool", "neg-long"]))
        text = {
            "long": json.dumps("i" * draw(st.integers(129, 20_000))),
            "fraction": draw(st.sampled_from(["1.5", "0.1", "-2.25", "1.0"])),
            "exponent": draw(st.sampled_from(["1e3", "1E0", "5e-1", "1e19"])),
            "twenty": str(draw(st.integers(10**19, 10**30))),
            "neg-long": str(-draw(st.integers(10**19, 10**30))),
            "object": json.dumps({"a": draw(st.integers(0, 9))}),
            "array": json.dumps([draw(st.integers(0, 9))]),
            "bool": draw(st.sampled_from(["true", "false"])),
        }[bad]
        method = draw(st.sampled_from(["health", "append", "read"]))
        events = [event("cash", 0, "hz-id")] if method == "append" else []
        blob = render(rpc(method, {"events": events} if events else None,
                          _hole(raw, text)), raw).encode()
        keys = _keys(events)
        return Probe("ids", f"request id {bad}", [Line(blob, keys, must_refuse=True,
                                                       id_refused=True)])
    name, value = draw(st.sampled_from(list[tuple[str, Any]]([
        ("id", "i" * 129), ("id", "i" * 10_000), ("id", ""), ("source", "s" * 257),
        ("id", 5), ("id", None), ("id", {"a": 1}), ("source", ""), ("id", 1e3),
        ("account", "a" * 65), ("account", "a b"), ("account", "../x"),
        ("source", None), ("type", "fill" * 100)])))
    account = _account(draw, "hz-id")
    broken = event("cash", 0, account)
    broken[name] = value
    keys = [(SOURCE, MARK.format(0))] if name != "id" else []
    if name == "id" and isinstance(value, str):
        keys = [(SOURCE, value)]
    events = draw(_neighbours(account, 1))
    events.insert(draw(st.integers(0, len(events))), broken)
    line = append_line(events, must_refuse=True)
    line.keys = sorted(set(line.keys) | set(keys))
    return Probe("ids", f"event {name} {str(value)[:30]!r}", [line])


# ------------------------------------------------------------------ nesting


def _deep(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


@st.composite
def nesting(draw: st.DrawFn) -> Probe:
    """Arrays and objects nested past 64, as the whole message, params, id, event data."""
    depth = draw(st.integers(66, 200) | st.sampled_from([66, 1000, 10_000, 100_000, 400_000]))
    kind = draw(st.sampled_from(["array", "object", "mixed"]))
    where = draw(st.sampled_from(["message", "params", "id", "data", "attrs", "filter",
                                  "strategy"]))
    deep = _deep(depth, kind)
    raw: list[str] = []
    if where == "message":
        return Probe("nesting", f"{kind} {depth} as the message",
                     [Line(deep.encode(), must_refuse=True)])
    if where == "params":
        blob = render(rpc("read", _hole(raw, deep), 1), raw).encode()
        return Probe("nesting", f"{kind} {depth} as params", [Line(blob, must_refuse=True)])
    if where == "id":
        blob = render(rpc("health", None, _hole(raw, deep)), raw).encode()
        return Probe("nesting", f"{kind} {depth} as id", [Line(blob, must_refuse=True)])
    if where == "filter":
        blob = render(rpc("query", {"view": "signals", "attrs": {"k": _hole(raw, deep)}}, 1),
                      raw).encode()
        return Probe("nesting", f"{kind} {depth} in query.attrs",
                     [Line(blob, must_refuse=True)])
    account = _account(draw, "hz-nest")
    if where == "strategy":
        bad = event("journal", 0, account, {"text": "x"})
        bad["type"] = "strategy"
        bad["data"] = {"strategy": "deep", "parameters": {"p": _hole(raw, deep)}}
    elif where == "attrs":
        bad = event("fill", 0, account)
        bad["data"]["attrs"] = {"k": _hole(raw, deep)}
    else:
        bad = event("journal", 0, account)
        bad["data"]["tags"] = _hole(raw, deep)
    events = draw(_neighbours(account, 1))
    events.insert(draw(st.integers(0, len(events))), bad)
    return Probe("nesting", f"{kind} {depth} in event {where}",
                 [append_line(events, raw, must_refuse=True)])


# ------------------------------------------------------------------ batches


BATCH_SHAPES = ("over", "numbers", "mixed", "reads", "subscribes", "empty", "appends")
"""The shapes of ``batches`` probes: past 1,000 members, bare numbers, mixed members,
reads and queries with big limits, many subscribes, the empty batch, appends only."""


@st.composite
def batches(draw: st.DrawFn, shape: str | None = None) -> Probe:
    """Batch arrays: past 1,000 members, mixed, reads with big limits, many subscribes,
    arrays of bare numbers; of the given ``shape`` (one of ``BATCH_SHAPES``) or any."""
    if shape is None:
        shape = draw(st.sampled_from(["over", "over", "numbers", "mixed", "mixed", "reads",
                                      "subscribes", "empty", "appends"]))
    if shape == "empty":
        return Probe("batches", "empty batch",
                     [Line(b"[]", must_refuse=True, batch_over=True)], shape)
    if shape == "numbers":
        count = draw(st.integers(1001, 500_000) | st.just(524_286 // 2))
        blob = ("[" + ",".join(["1"] * count) + "]").encode()
        return Probe("batches", f"{count} bare numbers",
                     [Line(blob, must_refuse=True, requests=count, batch_over=True)], shape)
    if shape == "over":
        count = draw(st.integers(1001, 3000))
        method = draw(st.sampled_from(["health", "read", "append"]))
        members: list[dict[str, Any]] = []
        keys: list[tuple[str, str]] = []
        for n in range(count):
            if method == "append":
                ev = event("cash", n, "hz-batch", {"amount": "1", "kind": "deposit"})
                members.append(rpc("append", {"events": [ev]}, n))
                keys += _keys([ev])
            else:
                members.append(rpc(method, {"limit": 1000} if method == "read" else None, n))
        blob = json.dumps(members, separators=(",", ":")).encode()
        return Probe("batches", f"{count} {method} members",
                     [Line(blob, keys, must_refuse=True, requests=count, batch_over=True)],
                     shape)
    if shape == "subscribes":
        count = draw(st.integers(17, 1000))
        members = [rpc("subscribe", {"from_seq": 10**15}, n) for n in range(count)]
        blob = json.dumps(members).encode()
        return Probe("batches", f"{count} subscribes in one batch",
                     [Line(blob, requests=count, max_subscriptions=16)], shape)
    if shape == "reads":
        # Valid, and costly: every read from seq 1 (the default limit of 1000, one with
        # 100,000), queries at the largest limit. The answer is big; the daemon must
        # still serve the others while it is built and sent.
        count = draw(st.integers(10, 100))
        members = []
        for n in range(count):
            pick = draw(st.sampled_from(["read", "read", "query", "query-balances"]))
            if pick == "read":
                params: dict[str, Any] = {"from_seq": 1, "limit": 1000}
                members.append(rpc("read", params, n))
            else:
                view = "journal" if pick == "query" else "balances"
                members.append(rpc("query", {"view": view, "limit": 100_000}, n))
        members[0] = rpc("read", {"from_seq": 1, "limit": 100_000}, 0)
        blob = json.dumps(members).encode()
        return Probe("batches", f"{count} reads/queries with big limits",
                     [Line(blob, requests=count)], shape)
    count = draw(st.integers(2, 1000 if shape == "appends" else 200))
    members = []
    appends: dict[str, list[tuple[str, str]]] = {}
    all_keys: list[tuple[str, str]] = []
    for n in range(count):
        pick = "append" if shape == "appends" else draw(st.sampled_from(
            ["append", "append", "bad-append", "health", "nonsense", "unknown", "query"]))
        if pick in ("append", "bad-append"):
            ev = event("cash", n, _account(draw, "hz-batch"))
            if pick == "bad-append":
                ev["data"]["amount"] = "1e999999999"
            members.append(rpc("append", {"events": [ev]}, n))
            appends[str(n)] = _keys([ev])
            all_keys += _keys([ev])
        elif pick == "health":
            members.append(rpc("health", None, n))
        elif pick == "unknown":
            members.append(rpc("shutdown", {}, n))
        elif pick == "query":
            members.append(rpc("query", {"view": "balances", "limit": 100_000}, n))
        else:
            members.append({"n": n})
    blob = json.dumps(members).encode()
    return Probe("batches", f"{count} {shape} members",
                 [Line(blob, all_keys, appends, requests=count)], shape)


# ------------------------------------------------------------------ oversize


@st.composite
def oversize(draw: st.DrawFn) -> Probe:
    """Lines past 1 MiB, each followed in the same write by an ``append`` that must never
    be read (the daemon closes the connection: a line's tail is never a request)."""
    size = draw(st.integers((1 << 20) + 1, 4 << 20) | st.sampled_from(
        [(1 << 20) + 1, (1 << 20) + 2, 2 << 20, 8 << 20]))
    shape = draw(st.sampled_from(["string", "id", "garbage", "events", "number"]))
    if shape == "string":
        head = b'{"jsonrpc":"2.0","id":1,"method":"health","params":{"pad":"'
        body = head + b"x" * (size - len(head) - 3) + b'"}}'
    elif shape == "id":
        head = b'{"jsonrpc":"2.0","method":"health","id":"'
        body = head + b"i" * (size - len(head) - 2) + b'"}'
    elif shape == "number":
        head = b'{"jsonrpc":"2.0","method":"health","id":'
        body = head + b"9" * (size - len(head) - 1) + b"}"
    elif shape == "garbage":
        body = bytes(range(0x41, 0x41 + 26)) * (size // 26 + 1)
    count = 0
    if shape == "events":
        one = json.dumps(event("cash", 0, "hz-big", {"amount": "1", "kind": "deposit"}))
        count = size // len(one) + 1
        evs = ",".join(one.replace(MARK.format(0), MARK.format(n)) for n in range(count))
        body = ('{"jsonrpc":"2.0","id":1,"method":"append","params":{"events":[' + evs
                + "]}}").encode()
    tail_event = event("cash", 900_001, "hz-big", {"amount": "1", "kind": "deposit"})
    tail = render(rpc("append", {"events": [tail_event]}, "tail"), []).encode()
    keys = [(SOURCE, MARK.format(n)) for n in range(count)] if shape == "events" else []
    line = Line(body + b"\n" + tail, keys, must_refuse=True, tail_keys=_keys([tail_event]))
    if draw(st.integers(0, 4)) == 0:
        line.blob = body  # and no newline: refused as soon as the limit is passed
        line.newline = False
        line.tail_keys = []
        return Probe("oversize", f"{shape} {size} bytes, no newline", [line])
    return Probe("oversize", f"{shape} {size} bytes", [line])


# ------------------------------------------------------------------ invalid UTF-8

_BAD_UTF8 = [b"\x80", b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
             b"\xc0\xaf", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\xc1\xbf", b"\xe0\x80\xaf"]


@st.composite
def utf8(draw: st.DrawFn) -> Probe:
    """Invalid UTF-8 in strings, keys and between tokens of an ``append``; NUL and
    control characters raw inside strings."""
    account = _account(draw, "hz-utf8")
    events = [event(draw(st.sampled_from(["journal", "fill", "cash"])), i, account)
              for i in range(draw(st.integers(1, 4)))]
    line = append_line(events, must_refuse=True)
    bad = draw(st.sampled_from([*_BAD_UTF8, b"\x00", b"\x01", b"\x1b[31m"]))
    if bad in (b"\x01", b"\x1b[31m"):
        line.must_refuse = True  # a raw control character is not JSON
    where = draw(st.sampled_from(["text", "key", "between", "end", "start"]))
    blob = line.blob
    if where == "text":
        spot = blob.index(b'"type"')
        line.blob = blob[:spot + 2] + bad + blob[spot + 2:]
    elif where == "key":
        spot = blob.index(b'"data"')
        line.blob = blob[:spot + 1] + bad + blob[spot + 1:]
    elif where == "between":
        spot = blob.index(b",")
        line.blob = blob[:spot] + bad + blob[spot:]
    elif where == "end":
        line.blob = blob + bad
    else:
        line.blob = bad + blob
    return Probe("utf8", f"{bad!r} at {where}", [line])


# ------------------------------------------------------------------ duplicate keys


@st.composite
def dupkeys(draw: st.DrawFn) -> Probe:
    """The same key twice in one object, at every level; both values are plausible."""
    account = _account(draw, "hz-dup")
    where = draw(st.sampled_from(["method", "id", "params", "events", "event-id",
                                  "account", "price", "mark", "attrs", "jsonrpc"]))
    events = [event("fill", 0, account), *draw(_neighbours(account, 1))]
    line = append_line(events, must_refuse=True)
    blob = line.blob
    first = {"method": (b'"method":', b'"method":"health","method":'),
             "id": (b'"id":1,', b'"id":1,"id":2,'),
             "jsonrpc": (b'"jsonrpc":"2.0",', b'"jsonrpc":"2.0","jsonrpc":"2.0",'),
             "params": (b'"params":', b'"params":{"events":[]},"params":'),
             "events": (b'"events":', b'"events":[],"events":'),
             "event-id": (b'"id":"@0@"', b'"id":"@0@","id":"@900@"'),
             "account": (f'"account":"{account}"'.encode(),
                         f'"account":"{account}","account":"hz-victim"'.encode()),
             "price": (b'"price":"1.1"', b'"price":"1.1","price":"1e999"'),
             "mark": (b'"symbol":"EURUSD"', b'"symbol":"EURUSD","symbol":"GBPUSD"'),
             "attrs": (b'"fee":"0.1"', b'"fee":"0.1","attrs":{"a":1,"a":2}')}[where]
    line.blob = blob.replace(first[0], first[1], 1)
    if where == "event-id":
        line.keys.append((SOURCE, MARK.format(900)))
    return Probe("dupkeys", where, [line])


# ------------------------------------------------------------------ overflow


_MAXQ = "999999999999999.999999999999999999"
_MINQ = "0.000000000000000001"


@st.composite
def overflow(draw: st.DrawFn) -> Probe:
    """Fills and marks that overflow a careless fold: out of bounds (refused), and at the
    very edge of the bounds (stored or refused, never a dead daemon), then the views."""
    account = draw(st.sampled_from(["hz-ovf-shared", f"hz-ovf-{draw(st.integers(0, 40))}"]))
    shape = draw(st.sampled_from(["issue", "issue", "edge", "edge", "multiplier", "flip"]))
    lines: list[Line] = []
    if shape == "issue":
        qty, price, mult = draw(st.sampled_from([
            ("900000000000000000000000", "1", None), ("9e23", "1", None),
            ("1e23", "1", "1e23"), ("1", "1", "1e23"), ("1", "1e-999999999", None),
            ("1e-999999999", "1", None), ("1", "1", "1000001"), ("1", "1e15", None)]))
        data = {"symbol": "OVF", "side": "buy", "quantity": qty, "price": price}
        if mult is not None:
            data["multiplier"] = mult
        lines.append(append_line([event("fill", 0, account, data)], must_refuse=True))
        lines.append(append_line([event("mark", 1, account, {"prices": {"OVF": "2"}})]))
        what = f"fill {qty} @ {price} x {mult}"
    else:
        qty = draw(st.sampled_from([_MAXQ, "999999999999999", _MINQ, "1"]))
        price = draw(st.sampled_from([_MAXQ, "999999999999999", _MINQ, "0.5"]))
        mult = draw(st.sampled_from(["1000000", "1", "0.000000000000000001", _MAXQ]))
        evs = []
        if shape == "multiplier":
            evs.append(event("instrument", 0, account, {"symbol": "OVF", "multiplier": mult}))
        data = {"symbol": "OVF", "side": draw(st.sampled_from(["buy", "sell"])),
                "quantity": qty, "price": price, "fee": draw(st.sampled_from(
                    ["0", _MAXQ, _MINQ]))}
        if shape == "edge" and draw(st.booleans()):
            data["multiplier"] = mult
        evs.append(event("fill", 1, account, data))
        lines.append(append_line(evs))
        mark = draw(st.sampled_from([_MAXQ, _MINQ, "999999999999999", "1"]))
        lines.append(append_line([event("mark", 2, account, {"prices": {"OVF": mark}})]))
        if shape == "flip":
            other = dict(data, side="sell" if data["side"] == "buy" else "buy",
                         quantity=_MAXQ)
            lines.append(append_line([event("fill", 3, account, other)]))
        lines.append(append_line([event("cash", 4, account,
                                        {"amount": _MAXQ, "kind": "deposit"})]))
        what = f"{shape}: {qty} @ {price} x {mult}, mark {mark}"
    for view in ("positions", "trades", "balances", "daily"):
        query = render(rpc("query", {"view": view, "account": account}, f"q-{view}"), [])
        lines.append(Line(query.encode()))
    return Probe("overflow", what, lines)


LINE_CLASSES = {
    "numbers": numbers, "times": times, "ids": ids, "nesting": nesting,
    "batches": batches, "oversize": oversize, "utf8": utf8, "dupkeys": dupkeys,
    "overflow": overflow,
}


SHAPES: dict[str, tuple[str, ...]] = {"batches": BATCH_SHAPES}
"""The line classes whose probes have named shapes, and those shapes."""


def probes(cls: str, shape: str | None = None) -> st.SearchStrategy[Probe]:
    """The strategy of one line class; with ``shape`` (one of ``SHAPES[cls]``), of the
    probes of that shape only.

    Raises:
        ValueError: ``cls`` has no shape ``shape``.
    """
    if shape is None:
        strategy: st.SearchStrategy[Probe] = LINE_CLASSES[cls]()
        return strategy
    if shape not in SHAPES.get(cls, ()):
        raise ValueError(f"{cls} has no shape {shape!r}; its shapes: {SHAPES.get(cls, ())}")
    return batches(shape)
