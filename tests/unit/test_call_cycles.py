"""A finished call is freed by reference counting: none of its objects waits for the cyclic
garbage collector (whose full collections stalled the event loop under load)."""

from __future__ import annotations

import asyncio
import collections
import gc
import re
import socket
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from callcenter.app import Application
from callcenter.calls import flows
from callcenter.calls.call import Call, Leg, LegState
from callcenter.cli import load_setup
from callcenter.config import Config, apply_overrides
from callcenter.log import configure_logging
from callcenter.sip.auth import digest_response, parse_auth_params
from ivr.dialplan import Dialplan
from tests.helpers.ports import allocate
from tests.unit.test_b2bua_core import (
    FakeApp,
    FakeMedia,
    FakeStack,
    inbound_leg,
    make_b2bua,
    ok_for,
    request,
    server_request,
)

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def collector_off() -> Iterator[collections.Counter[str]]:
    """Objects made meanwhile that only the collector could free, counted by type (a lambda
    or closure counts as ``function <its name>``)."""
    gc.collect()
    gc.disable()
    found: collections.Counter[str] = collections.Counter()
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        for obj in gc.garbage:
            kind = type(obj).__qualname__
            found[f"function {obj.__qualname__}" if kind == "function" else kind] += 1
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


def test_a_call_bridged_to_a_user_leaves_no_cycle() -> None:
    async def run() -> collections.Counter[str]:
        b2bua, stack, media, ended = make_b2bua()
        media.bridge = lambda a, b: None  # type: ignore[attr-defined]
        media.unbridge = lambda a: None  # type: ignore[attr-defined]
        services = FakeApp(b2bua)  # refers to itself: made before the call
        with collector_off() as garbage:
            call = await bridge_and_hang_up(services, stack, media)
            assert ended == [call()] and not b2bua.calls and not b2bua.live_legs
            ended.clear()
            for done in (stack.requests, stack.on_provisional, stack.on_retransmitted_2xx,
                         media.channels):
                done.clear()  # the stack's finished transactions, the closed channels
            del call  # the last reference: freed now, unless in a cycle
        return garbage

    garbage = asyncio.run(run())
    assert not garbage, f"a finished call's cycles: {dict(garbage)}"


async def bridge_and_hang_up(services: FakeApp, stack: FakeStack,
                             media: FakeMedia) -> weakref.ref[Call]:
    """A caller bridged to user 1001 hangs up; its call, weakly."""
    b2bua = services.b2bua
    leg = inbound_leg(b2bua, stack, media)
    leg.channel.play = lambda *a, **k: None
    leg.channel.stop_playing = lambda: None
    b2bua.answer(leg)
    ack = request("ACK", branch="z9hG4bKack1", to_tag=b2bua.local_tag(leg))
    await b2bua.on_in_dialog(server_request(stack, ack))
    bridged = asyncio.ensure_future(flows.transfer_to_user(services, leg, "1001"))
    for _ in range(5):
        await asyncio.sleep(0)
    ok = ok_for(stack.requests[0][0])
    ok.body = b2bua._offer(leg).serialize().encode()
    stack.requests[0][1].set_result(ok)
    for _ in range(5):
        await asyncio.sleep(0)
    assert leg.call.legs[1].state is LegState.ANSWERED
    bye = request("BYE", branch="z9hG4bKbye1", cseq=2, to_tag=b2bua.local_tag(leg))
    hangup = asyncio.ensure_future(b2bua.on_in_dialog(server_request(stack, bye)))
    for _ in range(5):  # the caller hung up: the agent's leg gets a BYE
        await asyncio.sleep(0)
    assert stack.methods() == ["INVITE", "BYE"]
    stack.requests[-1][1].set_result(ok_for(stack.requests[-1][0]))
    await asyncio.wait_for(hangup, 1)
    assert await asyncio.wait_for(bridged, 1) == "hangup"
    return weakref.ref(leg.call)


def server_config(tmp_path: Path, workers: int) -> tuple[Config, Dialplan]:
    """The benchmark's configuration (``workers`` media workers) with queue ``sales`` (agent 1001,
    callback key 5), its line 0800000002, and 1001's direct line 0800000003."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / "bench.yaml").write_text((REPO / "benchmarks/dialplans/bench.yaml").read_text() + (
        '  - {number: "0800000002", name: Queue, kind: toll-free, accept: [pstn], language: pl,'
        " queue: sales, prompt: welcome, timeout: 3600}\n"
        '  - {number: "0800000003", name: Agent, kind: other, accept: [pstn], language: pl,'
        " flow: agent}\nnodes:\n  agent: {type: transfer, user: '1001'}\n"))
    config = tmp_path / "config.yaml"
    config.write_text((REPO / "benchmarks/bench-config.yaml").read_text().replace(
        "../sounds", str(REPO / "sounds")).replace("dialplans: dialplans", f"dialplans: {plans}")
        .replace("codecs: [PCMU, PCMA]", f"codecs: [PCMU, PCMA]\n  workers: {workers}") + (
        "queues:\n  - {name: sales, members: [{user: '1001', static: true}], wrapup: 0,"
        " callback_key: '5', announce_every: null, auto_pause_after: null}\n"))
    cfg, dialplan, _ = load_setup(config)
    return apply_overrides(cfg, sip_port=allocate(1)[0], http_port=allocate(1)[0],
                           db=tmp_path / "db"), dialplan


def run_server(tmp_path: Path, workers: int,
               scenario: Callable[[Application], Awaitable[None]]) -> None:
    configure_logging("error", "json", None)
    cfg, dialplan = server_config(tmp_path, workers)

    async def run() -> None:
        app = Application(cfg, dialplan)
        await app.start()
        try:
            await scenario(app)
        finally:
            await app.stop()

    asyncio.run(run())


async def freed(call: weakref.ref[Call] | weakref.ref[Leg]) -> bool:
    """The call (or leg) is gone once its last tasks finished (bounded), the collector
    being off."""
    for _ in range(250):
        if call() is None:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("workers", [0, 2])  # the media in process, or the workers' proxies
def test_a_call_to_an_ivr_line_through_the_server_leaves_no_cycle(tmp_path: Path,
                                                                  workers: int) -> None:
    """The real SIP stack and media engine, the benchmark's line: INVITE, ACK, BYE over UDP."""

    async def scenario(app: Application) -> None:
        with collector_off() as garbage, Peer(app, "bench") as caller:
            call = await caller.call("0800000001")
            await caller.hang_up()
            assert await freed(call)
        assert not garbage, f"a finished call's cycles: {dict(garbage)}"

    run_server(tmp_path, workers, scenario)


@pytest.mark.parametrize("workers", [0, 2])
def test_queue_direct_and_callback_calls_leave_no_cycle(tmp_path: Path, workers: int) -> None:
    """Through the server: a queue caller who hangs up waiting, one an agent answered and
    talked to, a call to the agent's direct line, a queue caller who booked a callback (its
    request then rings the agent): each call is freed by reference counting the moment it
    ended, the agent's too."""

    async def scenario(app: Application) -> None:
        with collector_off() as garbage, Peer(app, "1001") as agent:
            with Peer(app, "+48221000001") as caller:  # no agent yet: waits, hangs up
                abandoned = await caller.call("0800000002")
                await caller.hang_up()
                assert await freed(abandoned)
            await agent.register()
            for n, line in enumerate(("0800000002", "0800000003"), 1):  # queue, direct line
                with Peer(app, f"+4822100000{n + 1}") as caller:
                    answered = await caller.call(line)
                    await until(lambda n=n: len(agent.got("ACK")) == n)
                    leg = next(x for x in app.b2bua.live_legs.values() if x.party == "1001")
                    taken, dialled = weakref.ref(leg.call), weakref.ref(leg)
                    del leg
                    await caller.hang_up()
                    await until(lambda n=n: len(agent.got("BYE")) == n)
                    # the agent's leg too: the stack keeps its answered INVITE's transaction
                    # 32 s for 2xx retransmissions, and with it, once, every callback's leg
                    assert await freed(answered) and await freed(taken) and await freed(dialled)
            assert app.queues.agent_command("1001", "pause")
            with Peer(app, "+48221000009") as caller:
                booked = await caller.call("0800000002")
                await until(lambda: bool(app.queues.queue_stats("sales")[0]["callers"]))
                await caller.send("INFO", "Signal=5\r\nDuration=160\r\n",
                                  "application/dtmf-relay")
                await until(lambda: bool(caller.got("BYE")))  # the request kept, hung up
                assert await freed(booked)
            agent.answer = 486
            assert app.queues.agent_command("1001", "unpause")
            await until(lambda: len(agent.got("INVITE")) == 3)  # the callback rings the agent
            invite = agent.got("INVITE")[2]
            assert b"+48221000009" in invite.split(b"\r\n\r\n")[0]
            await until(lambda: len(agent.got("ACK")) == 3)  # the 486's ACK
        assert not garbage, f"a finished call's cycles: {dict(garbage)}"

    run_server(tmp_path, workers, scenario)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in 10 s")


class Peer:
    """A phone or a caller on a UDP socket, a few lines of SIP: it answers what the server
    asks (INVITE with ``answer``, BYE, OPTIONS) and keeps every request it got."""

    def __init__(self, app: Application, user: str) -> None:
        self.app, self.user, self.answer = app, user, 200
        self.server = ("127.0.0.1", app.stack.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.sock, self.rtp):
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.responses: asyncio.Queue[bytes] = asyncio.Queue()
        self.call_id, self.cseq, self.to_tag, self.to = f"{user}-{self.port}@test", 0, "", ""
        asyncio.get_running_loop().add_reader(self.sock, self._read)  # no task: no garbage

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.get_running_loop().remove_reader(self.sock)
        self.sock.close()
        self.rtp.close()

    def got(self, method: str) -> list[bytes]:
        return [x for x in self.requests if x.startswith(method.encode() + b" ")]

    def sdp(self) -> str:
        return ("v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp.getsockname()[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

    async def send(self, method: str, body: str = "", ctype: str = "application/sdp", *,
                   to: str = "", extra: str = "") -> bytes:
        """Send a request (in the dialog once there is one); its final response."""
        if method != "ACK":
            self.cseq += 1
        to = to or self.to
        head = (f"{method} sip:{to}@127.0.0.1:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method}{self.cseq};rport\r\n"
                f"From: <sip:{self.user}@127.0.0.1>;tag=p{self.port}\r\n"
                f"To: <sip:{to}@127.0.0.1>{';tag=' + self.to_tag if self.to_tag else ''}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} {method}\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>\r\nMax-Forwards: 70\r\n"
                f"{extra}{'Content-Type: ' + ctype + chr(13) + chr(10) if body else ''}"
                f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendto(head.encode(), self.server)
        while method != "ACK":
            data = await asyncio.wait_for(self.responses.get(), 10)
            if re.search(rb"\r\nCSeq: %d " % self.cseq, data) and not data.startswith(b"SIP/2.0 1"):
                return data
        return b""

    async def call(self, number: str) -> weakref.ref[Call]:
        """Call ``number`` and ACK its 200; the server's call, weakly."""
        self.to = number
        ok = await self.send("INVITE", self.sdp())
        assert ok.startswith(b"SIP/2.0 200"), ok
        found = re.search(rb"\nTo:[^\r]*;tag=([^\r;]+)", ok)
        assert found is not None
        self.to_tag = found.group(1).decode()
        await self.send("ACK")
        await until(lambda: any(x.caller == self.user for x in self.app.b2bua.calls.values()))
        (call,) = [x for x in self.app.b2bua.calls.values() if x.caller == self.user]
        return weakref.ref(call)

    async def hang_up(self) -> None:
        assert (await self.send("BYE")).startswith(b"SIP/2.0 200")

    async def register(self) -> None:
        self.to = self.user
        contact = "Expires: 3600\r\n"
        challenge = await self.send("REGISTER", extra=contact)
        found = re.search(rb"\nWWW-Authenticate: ([^\r]+)", challenge)
        assert challenge.startswith(b"SIP/2.0 401") and found is not None
        _, params = parse_auth_params(found.group(1).decode())
        uri = f"sip:{self.user}@127.0.0.1:{self.server[1]}"
        response = digest_response(algorithm=params["algorithm"], username=self.user,
                                   realm=params["realm"], password="agent1001",
                                   method="REGISTER", uri=uri, nonce=params["nonce"])
        auth = (f'Authorization: Digest username="{self.user}", realm="{params["realm"]}", '
                f'nonce="{params["nonce"]}", uri="{uri}", response="{response}", '
                f'algorithm={params["algorithm"]}, opaque="{params["opaque"]}"\r\n')
        assert (await self.send("REGISTER", extra=contact + auth)).startswith(b"SIP/2.0 200")
        self.to = ""

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            if data.startswith(b"SIP/2.0 "):
                self.responses.put_nowait(data)
                continue
            self.requests.append(data)
            if data.startswith(b"ACK "):
                continue
            status, body = 200, ""
            if data.startswith(b"INVITE "):
                status, body = self.answer, self.sdp() if self.answer == 200 else ""
            self.sock.sendto(self._response(data, status, body), self.server)

    def _response(self, req: bytes, status: int, body: str) -> bytes:
        head = req.split(b"\r\n\r\n")[0].decode().split("\r\n")
        keep = [x for x in head[1:] if x.split(":")[0].lower() in ("via", "from", "call-id", "cseq")]
        to = next(x for x in head if x.lower().startswith("to:"))
        to += "" if ";tag=" in to else f";tag=a{self.port}"
        lines = [f"SIP/2.0 {status} {'OK' if status == 200 else 'Busy Here'}", *keep, to,
                 f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>"]
        lines += ["Content-Type: application/sdp"] if body else []
        return ("\r\n".join([*lines, f"Content-Length: {len(body)}", "", body])).encode()
