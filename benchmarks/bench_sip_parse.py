"""Micro-benchmark: SIP parse and the header properties a request's path reads.

In process, no sockets. For a typical trunk INVITE (and its 200 OK) it times:

- `parse`: `parse_message()` alone;
- `props`: the property reads the server makes on one received request (transaction key,
  response destination, Via stamping, merge/ACK keys, dialog lookup, routing), on an already
  parsed message;
- `parse+props`: both, which is what one INVITE costs the SIP input path.

    python3 benchmarks/bench_sip_parse.py --iterations 20000 --repeat 5

Prints one JSON line per case with the best and median microseconds per message over the
repeats (best is the least disturbed by other load on a shared box).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.sip.message import Request, Response, parse_message

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 25264 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)

INVITE = (
    b"INVITE sip:0800000001@127.0.0.1:25260 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:25262;branch=z9hG4bK-4711-1-0;rport\r\n"
    b'From: "Caller" <sip:48221234567@127.0.0.1:25262>;tag=4711SIPpTag001\r\n'
    b"To: <sip:0800000001@127.0.0.1:25260>\r\n"
    b"Call-ID: 1-4711@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:48221234567@127.0.0.1:25262>\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: SIPp\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:25260;branch=z9hG4bK-cc-1;rport=25260;received=127.0.0.1\r\n"
    b"From: <sip:0800000001@127.0.0.1:25260>;tag=cc-abc\r\n"
    b"To: <sip:1001@127.0.0.1:5070>;tag=agent-xyz\r\n"
    b"Call-ID: cc-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:1001@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def request_props(req: Request) -> int:
    """Roughly the reads one INVITE gets between the socket and the application."""
    n = 0
    via = req.top_via  # server_key
    n += len(via.branch or "")
    n += len(req.from_tag or "") + req.cseq[0] + len(req.call_id)
    via = req.top_via  # response_destination
    n += len(via.host)
    vias = req.vias  # stamp_via
    n += len(vias)
    n += len(req.call_id) + len(req.from_tag or "") + req.cseq[0]  # merge key
    n += 1 if req.to_tag is None else 0  # in-dialog check (transaction)
    n += len(req.call_id) + req.cseq[0]  # ACK key
    n += 1 if req.to_tag is None else 0  # app: in-dialog?
    n += len(str(req.from_.uri)) + len(str(req.to.uri))  # identify, route
    n += len(req.call_id) + len(req.to_tag or "") + len(req.from_tag or "")  # dialog lookup
    n += len(req.cseq[1]) + (req.max_forwards or 0)
    n += len(req.content_type or "")
    return n


def response_props(resp: Response) -> int:
    """The reads a 200 OK to our INVITE gets (client transaction, dialog)."""
    n = len(resp.vias[0].branch or "") + len(resp.cseq[1])
    n += len(resp.call_id) + len(resp.to_tag or "") + len(resp.from_tag or "")
    n += resp.cseq[0] + len(resp.contacts)
    return n


def timed(fn: Callable[[], object], iterations: int, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        runs.append((time.perf_counter() - t0) / iterations * 1e6)
    return min(runs), statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    iterations = max(1, min(args.iterations, 1_000_000))
    repeat = max(1, min(args.repeat, 50))

    req = parse_message(INVITE)
    resp = parse_message(OK)
    assert isinstance(req, Request) and isinstance(resp, Response)

    def parse_req_props() -> int:
        r = parse_message(INVITE)
        assert isinstance(r, Request)
        return request_props(r)

    def parse_resp_props() -> int:
        r = parse_message(OK)
        assert isinstance(r, Response)
        return response_props(r)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("INVITE parse", lambda: parse_message(INVITE)),
        ("INVITE props", lambda: request_props(req)),
        ("INVITE parse+props", parse_req_props),
        ("200 parse", lambda: parse_message(OK)),
        ("200 props", lambda: response_props(resp)),
        ("200 parse+props", parse_resp_props),
    ]
    for name, fn in cases:
        best, median = timed(fn, iterations, repeat)
        line = {"case": name, "us_best": round(best, 2), "us_median": round(median, 2)}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
