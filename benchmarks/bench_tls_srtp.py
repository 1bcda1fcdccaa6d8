"""What encryption costs: REGISTERs per second over TLS, and SRTP per packet.

    python benchmarks/bench_tls_srtp.py tls --seconds 20 --workers 8
    python benchmarks/bench_tls_srtp.py srtp --packets 50000

`tls`: a fresh server (benchmarks/bench-config.yaml with TLS on, a throw-away CA made with
openssl); `--workers` clients each REGISTER user 1001 with digest (REGISTER, 401, REGISTER,
200) as fast as answers come for `--seconds`, (a) opening a new TCP or TLS connection for
every registration (so TLS pays a full handshake each time) and (b) over one TLS connection
per worker. Server CPU sampled every second. One JSON line per mode.

`srtp`: in process, no server: libsrtp's protect and unprotect of a 172-octet PCMU packet,
then the engine's receive-and-relay path (`Channel._on_packet` of a bridged pair, sending for
real to a loopback socket) for plain -> plain (also with in-band DTMF detection on a trunk
whose far end sends RFC 4733 events), SRTP -> plain and SRTP -> SRTP; packets per
second of one core from the process CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ROOT, CpuSampler, Server, machine

from callcenter.media import g711
from callcenter.media.dtmf import event_packets
from callcenter.media.engine import MediaEngine
from callcenter.media.rtp import RtpPacket, encode_rtp
from callcenter.media.srtp import SrtpSession, new_key
from callcenter.sip.auth import build_authorization
from callcenter.sip.message import Response, parse_message

HOST = "127.0.0.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"


# ------------------------------------------------------------------------------ TLS

def make_certs(d: Path) -> tuple[Path, Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca, ca_key, key, csr, cert = (d / n for n in ("ca.pem", "ca.key", "s.key", "s.csr", "s.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "1", "-subj", "/CN=bench CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(d / "ext"))
    return ca, cert, key


def register(port: int, transport: str, cseq: int, call_id: str, auth: str = "") -> bytes:
    uri = f"sip:127.0.0.1:{port}"
    return (
        f"REGISTER {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:5999;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=b1\r\nTo: <sip:1001@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:1001@127.0.0.1:5999;transport={transport}>\r\nExpires: 600\r\n"
        + (f"Authorization: {auth}\r\n" if auth else "") + "Content-Length: 0\r\n\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    msg = parse_message(head)
    assert isinstance(msg, Response)
    return msg


async def one_registration(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           port: int, transport: str, cseq: int, call_id: str) -> bool:
    writer.write(register(port, transport, cseq, call_id))
    challenge = await read_response(reader)
    if challenge.status != 401:
        return False
    auth = build_authorization(challenge.headers.get("WWW-Authenticate") or "",
                               method="REGISTER", uri=f"sip:127.0.0.1:{port}", username="1001",
                               password="agent1001", cnonce=uuid.uuid4().hex[:8])
    writer.write(register(port, transport, cseq + 1, call_id, auth))
    return (await read_response(reader)).status == 200


async def worker(port: int, transport: str, ctx: ssl.SSLContext | None, fresh: bool,
                 until: float, counts: dict[str, int]) -> None:
    call_id, cseq = uuid.uuid4().hex, 1
    conn = None
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        if conn is None:
            conn = await asyncio.open_connection(HOST, port, ssl=ctx,
                                                 server_hostname=HOST if ctx else None)
        ok = await asyncio.wait_for(one_registration(*conn, port, transport, cseq, call_id), 10)
        counts["ok" if ok else "failed"] += 1
        cseq += 2
        if fresh:
            conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


def bench_tls(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    ca, cert, key = make_certs(work)
    data = yaml.safe_load((ROOT / "benchmarks" / "bench-config.yaml").read_text())
    tls_port = 25270
    data["sip"].update(transports=["udp", "tcp", "tls"],
                       tls={"certificate": str(cert), "key": str(key), "port": tls_port})
    data["sip"]["auth"] = {"max_failures": 1000000}
    for k in ("sounds", "dialplans"):
        if k in data and not Path(data[k]).is_absolute():
            data[k] = str((ROOT / "benchmarks" / data[k]).resolve())
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    server = Server(work, config, sip_port=data["sip"]["port"], http_port=25271)
    server.start()
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        for mode, port, transport, c, fresh in (
            ("tcp, new connection each", data["sip"]["port"], "tcp", None, True),
            ("tls, new connection each", tls_port, "tls", ctx, True),
            ("tls, one connection per worker", tls_port, "tls", ctx, False),
        ):
            counts = {"ok": 0, "failed": 0}
            cpu = CpuSampler(server.pid).start()

            async def run(port: int = port, transport: str = transport,
                          c: ssl.SSLContext | None = c, fresh: bool = fresh,
                          counts: dict[str, int] = counts) -> None:
                until = asyncio.get_running_loop().time() + args.seconds
                await asyncio.gather(*(worker(port, transport, c, fresh, until, counts)
                                       for _ in range(args.workers)))

            t0 = time.monotonic()
            asyncio.run(run())
            elapsed = time.monotonic() - t0
            cpu.stop()
            print(json.dumps({
                "mode": mode, "workers": args.workers, "seconds": round(elapsed, 1),
                "registrations": counts["ok"], "failed": counts["failed"],
                "per_second": round(counts["ok"] / elapsed, 1),
                "server_cpu": {k: round(v, 1) for k, v in cpu.summary(1).items()},
                "system_busy_pct": round(cpu.system_summary(1), 1),
            }), flush=True)
    finally:
        server.stop()


# ----------------------------------------------------------------------------- SRTP

def cpu_rate(n: int, fn: object) -> float:
    t0 = time.process_time()
    fn()  # type: ignore[operator]
    return n / (time.process_time() - t0)


def bench_srtp(args: argparse.Namespace) -> None:
    n = args.packets
    frame = bytes(range(160))
    plain = [encode_rtp(RtpPacket(0, i & 0xFFFF, 160 * i, 0xCAFE, frame)) for i in range(n)]
    tx = SrtpSession(SUITE, key := new_key(), other := new_key())
    rx = SrtpSession(SUITE, other, key)
    protected: list[bytes] = []
    out = {"protect": cpu_rate(n, lambda: protected.extend(tx.protect(p) for p in plain)),
           "unprotect": cpu_rate(n, lambda: [rx.unprotect(p) for p in protected])}

    async def relay(srtp_in: bool, srtp_out: bool, inband: bool = False) -> float:
        engine = MediaEngine(HOST, (46000, 46999))
        await engine.start()
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((HOST, 0))
        try:
            a, b = engine.open_channel(inband_dtmf=inband), engine.open_channel()
            far = new_key()
            a.configure(("127.0.0.1", 9), g711.PCMU, 101,
                        srtp=(SUITE, far) if srtp_in else None)
            b.configure(sink.getsockname(), g711.PCMU, 101,
                        srtp=(SUITE, new_key()) if srtp_out else None)
            engine.bridge(a, b)
            packets = ([SrtpSession(SUITE, far, a.srtp_key).protect(p) for p in plain]
                       if srtp_in else plain)
            source, now = ("127.0.0.1", 9), engine.now()
            if inband:  # a trunk with in-band DTMF whose far end sends RFC 4733 events
                for ev in event_packets("1"):
                    a._on_packet(encode_rtp(RtpPacket(101, 0, 0, 0xCAFE, ev.payload)), source,
                                 now)
                b.stats.relayed_out = 0

            def run() -> None:
                for p in packets:
                    a._on_packet(p, source, now)
            rate = cpu_rate(n, run)
            assert b.stats.relayed_out == n, b.stats
            return rate
        finally:
            sink.close()
            await engine.close()

    for name, flags in (("relay plain -> plain", (False, False)),
                        ("relay plain -> plain, in-band DTMF trunk", (False, False, True)),
                        ("relay srtp -> plain", (True, False)),
                        ("relay srtp -> srtp", (True, True))):
        out[name] = asyncio.run(relay(*flags))
    print(json.dumps({"packets": n, "suite": SUITE, "machine": machine(),
                      "packets_per_cpu_second": {k: round(v) for k, v in out.items()},
                      "us_per_packet": {k: round(1e6 / v, 2) for k, v in out.items()}}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    tls = sub.add_parser("tls")
    tls.add_argument("--seconds", type=float, default=20)
    tls.add_argument("--workers", type=int, default=8)
    srtp = sub.add_parser("srtp")
    srtp.add_argument("--packets", type=int, default=50000)  # one stream: seq must not wrap
    args = parser.parse_args()
    bench_tls(args) if args.what == "tls" else bench_srtp(args)


if __name__ == "__main__":
    main()
