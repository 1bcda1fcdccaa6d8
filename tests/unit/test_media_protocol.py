"""The worker protocol: every message survives encode/decode, frames split anywhere."""

from __future__ import annotations

import pytest

from callcenter.media import protocol as p
from callcenter.media.rtp import ReceptionStats
from callcenter.media.stats import ChannelStats, EngineStats

SAMPLES = [
    p.Open(3, inband_dtmf=True),
    p.Configure(3, ("127.0.0.1", 4000), 8, None, rtcp_remote=("127.0.0.1", 4001)),
    p.Play(3, 7, "k1", 0, 160, interruptible=True, loop=True, forget=("k0",), data=b"\xff" * 320),
    p.StopPlaying(3), p.SendDtmf(3, "12#", 80, 40), p.DtmfReceived(3, "5"),
    p.Record(3, "/tmp/x.wav", stereo=True), p.StopRecording(3), p.Listen(3, True),
    p.Bridge(3, 4), p.Unbridge(4), p.Mix(1, (3, 4, 5), ((0, 1, 1), (1, 0, 0.5), (1, 1, 0))),
    p.SetMatrix(1, ((0, 1), (1, 0))), p.Unmix(1), p.Close(3, moving=True),
    p.PlayDone(3, 7, "interrupted"), p.Dtmf(3, "#"), p.Audio(3, bytes(range(256))),
    p.Stats(EngineStats(10, 1, 2, 0.031), {"3": ChannelStats(packets_in=5, decoded=2)}),
    p.Closed(3, ChannelStats(packets_in=7, reception=ReceptionStats(ssrc=9, jitter=3.5))),
    p.Moved(3, {"stream": {"ssrc": 5}, "remote": ("127.0.0.1", 4000)}),
]


def test_the_engines_figures_travel_whole() -> None:
    """A worker sends the engine's own dataclasses: what a CDR reads is computed alike."""
    stats = ChannelStats(packets_in=3)
    for seq in (1, 2, 5):
        stats.reception.update(0xCAFE, seq, 160 * seq, seq * 0.02 + seq % 2 * 0.005)
    (msg,) = p.Decoder().feed(p.encode(p.Closed(1, stats)))
    assert msg.stats == stats and isinstance(msg.stats.reception, ReceptionStats)
    assert (msg.stats.packets_lost, msg.stats.jitter_ms) == (2, stats.jitter_ms) != (2, 0.0)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    assert p.Decoder().feed(p.encode(msg)) == [msg]


def test_frames_split_at_every_byte_and_joined() -> None:
    stream = b"".join(p.encode(m) for m in SAMPLES)
    dec = p.Decoder()
    out = []
    for i in range(len(stream)):
        out += dec.feed(stream[i:i + 1])
    assert out == SAMPLES
    assert p.Decoder().feed(stream) == SAMPLES


def test_a_field_only_a_newer_peer_knows_is_left_out() -> None:
    """A worker restarted from an upgraded install may send a field this side lacks."""
    header = b'{"t":"Closed","ch":1,"stats":{"packets_in":4,"new_figure":1},"later":true}'
    frame = len(header).to_bytes(4, "big") + bytes(4) + header
    assert p.Decoder().feed(frame) == [p.Closed(1, ChannelStats(packets_in=4))]


def test_addresses_come_back_as_tuples() -> None:
    (msg,) = p.Decoder().feed(p.encode(SAMPLES[1]))
    assert msg.remote == ("127.0.0.1", 4000)  # a list would never equal a socket's address


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x00\x02\x00\x00\x00\x00{}",  # no type
    b"\x00\x00\x00\x0c\x00\x00\x00\x00{\"t\":\"Nope\"}",
    b"\x00\x00\x00\x0c\x00\x00\x00\x00{\"t\":\"Open\"}",  # missing field
    b"\x00\x00\x00\x03\x00\x00\x00\x00abc",
    b"\x7f\x00\x00\x00\x00\x00\x00\x00",  # absurd length
])
def test_garbage_is_a_protocol_error(frame: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.Decoder().feed(frame)
