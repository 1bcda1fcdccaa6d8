"""``##<target>#`` and ``*2<target>#`` during a bridged call: the key collector (pure, clock passed in) and the
rule that keys count only while the presser is bridged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from callcenter.calls.call import Call, Leg
from callcenter.calls.transfer import KeyCode, Transfers


def press(code: KeyCode, keys: str, start: float = 0.0, gap: float = 0.5) -> list[str]:
    found = [code.feed(k, start + i * gap) for i, k in enumerate(keys)]
    return [t if p == "##" else f"{p}:{t}" for p, t in filter(None, found)]


def test_hash_hash_target_hash() -> None:
    assert press(KeyCode(), "##1003#") == ["1003"]
    assert press(KeyCode(), "12##0800123456#5##1003#") == ["0800123456", "1003"]


def test_star_two_target_hash_consults() -> None:
    assert press(KeyCode(), "*21003#") == ["*2:1003"]
    assert press(KeyCode(), "5**21003#1##1004#") == ["*2:1003", "1004"]
    assert press(KeyCode(), "*31003#") == []  # not a code
    assert press(KeyCode(), "*2#") == []  # no target
    assert press(KeyCode(), "*#*21003#") == ["*2:1003"]


def test_other_keys_and_single_hashes_start_over() -> None:
    assert press(KeyCode(), "#1003#") == []
    assert press(KeyCode(), "#5#1003#") == []
    assert press(KeyCode(), "###") == []  # no target
    assert press(KeyCode(), "1#2##3#") == ["3"]
    assert press(KeyCode(), "##" + "1" * 40 + "#") == []  # too long


def test_a_pause_abandons_the_collection() -> None:
    code = KeyCode(timeout=4.0)
    assert press(code, "##10", gap=1.0) == []
    assert code.feed("0", 3.0 + 4.5) is None  # 4.5 s after the last key: starts over
    assert code.feed("3", 8.0) is None and code.feed("#", 8.5) is None
    assert press(code, "##1003#", start=20.0, gap=3.9) == ["1003"]


def test_keys_count_only_while_bridged() -> None:
    call = Call(caller="1002", called="1001", source="user:1002")
    caller, agent = (Leg(call, "inbound", ("127.0.0.1", 1), "udp", "1002"),
                     Leg(call, "outbound", ("127.0.0.1", 2), "udp", "1001"))
    bridged: dict[Leg, Leg] = {}
    services: Any = SimpleNamespace(b2bua=SimpleNamespace(partner=bridged.get), now=lambda: 0.0)
    t = Transfers(services, queues=SimpleNamespace(), users=set(),  # type: ignore[arg-type]
                  lines=lambda n: None)
    started: list[tuple[Leg, str, Leg]] = []
    t.start = lambda transferee, to, *, transferor, by: started.append(  # type: ignore[method-assign]
        (transferee, to, transferor))
    for key in "##10":  # in the IVR: bridged to nobody
        t.on_key(caller, key)
    bridged.update({caller: agent, agent: caller})
    for key in "03#":
        t.on_key(caller, key)
    assert started == []
    for key in "##1003#":
        t.on_key(agent, key)
    assert started == [(caller, "1003", agent)]
