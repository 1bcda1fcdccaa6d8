"""Issue 3 end to end: SIPp callers walk the demo IVR with RFC 4733 keys (pcap, pt 101).

One server per clock setting (``serve --clock``, Europe/Warsaw): inside business hours (Monday
10:00), at night (Monday 22:00) and on a Polish holiday (Christmas, 10:00). All their callers
run at once, each in its own SIPp process with its own RTP sink, in one module fixture; the tests
then read what each call left: ``call_events`` (ivr_node, ivr_choice, ivr_schedule...),
``callbacks``, ``voicemails`` and the audio the caller received.

Keys are timed against the demo prompts: the welcome (pl 3.9 s) is interruptible, so most
callers press their key 1.5 s into the call (barge-in) and the menu takes it at once. What
happens after a queue is chosen belongs to the ACD (music on hold, or the failure menu), so the
queue paths are checked on the IVR's choice, not on what follows.

Also: ``callcenter check`` on broken copies of the dialplan (exit 1, file:line:col), and a
live reload of a broken, then fixed, dialplan while calls are in the IVR.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import require_binary
from tests.helpers import audio, pcap, ports
from tests.helpers.artifacts import REPO, artifact_dir
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import STAND_IN_ENV, ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, SippResult, wait_until
from tests.integration.demo import DTMF_PT, LINE_SHARED_COST, LINE_TOLLFREE, Media

CLOCK_OPEN = "2026-11-23T10:00"  # a Monday, inside Mon-Fri 8-20
CLOCK_NIGHT = "2026-11-23T22:00"  # the same Monday after 20:00
CLOCK_HOLIDAY = "2026-12-25T10:00"  # Christmas Day (a Friday): a Polish public holiday
CODEC, CODEC_PT = "PCMU", 0
CALLER = "48221234567"  # the From user of uac_ivr.xml
SOUNDS = REPO / "sounds"
DIALPLAN = REPO / "dialplans" / "hotline.yaml"
#: after the caller's BYE: time for the server to finish the call and write its events
SETTLE = 10.0


# ---------------------------------------------------------------------------- scripted callers


@dataclass(frozen=True)
class Step:
    """At ``at`` seconds after the ACK: press ``digits`` (RFC 4733) or say ``wav`` (G.711)."""

    at: float
    digits: str = ""
    wav: Path | None = None


@dataclass(frozen=True)
class Script:
    """One caller: the line dialled, what they do and when they hang up (seconds after ACK)."""

    name: str
    line: str
    steps: tuple[Step, ...]
    hangup_at: float


@dataclass
class Event:
    """One row of call_events."""

    ts: float
    type: str
    data: dict[str, Any]


@dataclass
class CallResult:
    """What one scripted call left behind."""

    script: Script
    sipp: SippResult
    heard: np.ndarray
    rtp_packets: int
    cdr: dict[str, Any] | None
    events: list[Event] = field(default_factory=list)

    def of(self, type_: str, **match: Any) -> list[Event]:
        """Events of one type whose data has all of ``match``."""
        return [
            e for e in self.events
            if e.type == type_ and all(e.data.get(k) == v for k, v in match.items())
        ]

    def nodes(self) -> list[tuple[str, str]]:
        """(node, language) of every ivr_node event, in order."""
        return [(str(e.data["node"]), str(e.data.get("language"))) for e in self.of("ivr_node")]

    def describe(self) -> str:
        lines = [f"{e.type} {json.dumps(e.data, ensure_ascii=False)}" for e in self.events]
        return f"call {self.script.name}: events\n  " + "\n  ".join(lines)


def _write_step_pcaps(script: Script, workdir: Path) -> list[tuple[float, Path]]:
    """One pcap per step, all on one SSRC with sequence numbers and timestamps running on (the
    server tells key presses apart by RTP timestamp, RFC 4733 §2.5.1.2)."""
    ssrc = zlib.crc32(script.name.encode())
    seq = 1000
    out: list[tuple[float, Path]] = []
    end_of_previous = 0.0
    for i, step in enumerate(script.steps):
        assert step.at >= end_of_previous + 0.1, f"{script.name}: step {i} overlaps the one before"
        ts = int(step.at * 8000)
        if step.wav is not None:
            packets = pcap.audio_packets(
                pcap.read_wav_pcm(step.wav), CODEC, ssrc=ssrc, seq=seq, timestamp=ts
            )
        else:
            packets = pcap.dtmf_packets(step.digits, pt=DTMF_PT, ssrc=ssrc, seq=seq, timestamp=ts)
        seq = (packets[-1].seq + 1) & 0xFFFF
        end_of_previous = step.at + packets[-1].time + 0.02
        path = pcap.write_pcap(workdir / f"step{i}_{step.digits or 'audio'}.pcap", packets)
        out.append((step.at, path))
    assert script.hangup_at >= end_of_previous, f"{script.name}: hangs up while still sending"
    return out


def _scenario(script: Script, workdir: Path) -> Path:
    """uac_ivr.xml with this caller's pauses and playbacks in place of its STEPS comment."""
    parts: list[str] = []
    now = 0.0
    for at, path in _write_step_pcaps(script, workdir):
        parts.append(f'  <pause milliseconds="{round((at - now) * 1000)}"/>')
        parts.append(f'  <nop><action><exec play_pcap_audio="{path}"/></action></nop>')
        now = at
    parts.append(f'  <pause milliseconds="{round((script.hangup_at - now) * 1000)}"/>')
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    assert "<!-- STEPS -->" in template
    out = workdir / f"uac_ivr_{script.name}.xml"
    out.write_text(template.replace("<!-- STEPS -->", "\n".join(parts)), encoding="iso-8859-1")
    return out


class Caller:
    """A SIPp caller running a Script against a server, with an RTP sink for what it hears."""

    def __init__(self, server: ServerProcess, script: Script, workdir: Path) -> None:
        self.server = server
        self.script = script
        self.workdir = workdir / script.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sipp = Sipp(
            str(_scenario(script, self.workdir)),
            workdir=self.workdir,
            ports=ports.allocate(8),
            remote_port=server.sip_port,
            service=script.line,
            timeout=script.hangup_at + 25,
            keys={"codec_pt": str(CODEC_PT), "codec_name": CODEC},
            extra=["-cid_str", f"ivr-{script.name}-%u-%p@%s"],
        )
        self.sink: RtpSink | None = None

    def start(self) -> Caller:
        self.sink = RtpSink(self.sipp.sink_port)
        self.sipp.start()
        return self

    def finish(self) -> CallResult:
        """Wait for SIPp (bounded), then for the call's CDR to be closed; read its events."""
        assert self.sink is not None, "start() first"
        try:
            result = self.sipp.wait()
        finally:
            self.sink.close()
        heard = self.sink.audio(CODEC_PT)
        audio.write_wav(self.workdir / "heard_by_caller.wav", heard)
        prefix = f"ivr-{self.script.name}-"
        cdr = self.server.wait_cdr(
            lambda r: str(r["sip_call_id"]).startswith(prefix) and r["end"] is not None,
            timeout=SETTLE,
        )
        if cdr is None:  # not closed in time: still report what there is
            cdr = next(
                (r for r in self.server.cdrs() if str(r["sip_call_id"]).startswith(prefix)), None
            )
        events = _call_events(self.server, str(cdr["id"])) if cdr else []
        count = self.sink.payload_types().get(CODEC_PT, 0)
        return CallResult(self.script, result, heard, count, cdr, events)


def _query(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows of a read-only query ([] when the table does not exist yet)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        con.row_factory = sqlite3.Row
        return list(con.execute(sql, args).fetchall())
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _call_events(server: ServerProcess, call_id: str) -> list[Event]:
    rows = _query(
        server.db_path,
        "SELECT ts, type, data FROM call_events WHERE call_id = ? ORDER BY ts, rowid",
        (call_id,),
    )
    return [Event(float(r["ts"]), str(r["type"]), json.loads(r["data"] or "{}")) for r in rows]


def _log_records(server: ServerProcess, event: str) -> list[dict[str, Any]]:
    """The server's JSON log lines with this ``event``."""
    out = []
    for line in server.log_text().splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            out.append(record)
    return out


def _prompt(name: str, language: str = "pl", start: float = 0.0, seconds: float = 2.0) -> Any:
    """A slice of a shipped prompt (float samples, 8 kHz)."""
    samples, rate = audio.read_wav(SOUNDS / language / f"{name}.wav")
    assert rate == 8000
    return samples[int(start * rate) : int((start + seconds) * rate)]


def _occurrences(reference: Any, recording: Any, threshold: float = 0.8) -> int:
    """How many times ``reference`` appears in ``recording`` (normalised correlation above
    ``threshold``, hits closer than one reference length counted once)."""
    n, m = len(reference), len(recording)
    if n == 0 or m < n:
        return 0
    size = 1 << int(np.ceil(np.log2(n + m)))
    num = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    num = num[: m - n + 1]
    energy = np.concatenate([[0.0], np.cumsum(np.square(recording))])
    window = energy[n:] - energy[: m - n + 1]
    ref_energy = float(np.sum(np.square(reference)))
    score = np.zeros(m - n + 1)
    valid = window > ref_energy * 1e-2
    score[valid] = np.abs(num[valid]) / np.sqrt(window[valid] * ref_energy)
    hits, last = 0, -n
    for offset in np.flatnonzero(score > threshold):
        if offset - last >= n:
            hits += 1
            last = int(offset)
    return hits


# --------------------------------------------------------------------------------- the scripts

KEY_AT = 1.5  # during the welcome: barge-in
PL_WELCOME = 3.9  # sounds/pl/welcome.wav
PL_MENU = 19.4  # sounds/pl/menu.wav
PL_NO_INPUT = 1.8  # sounds/pl/no_input.wav
MENU_TIMEOUT = 5.0  # main_menu.timeout
#: no key: the welcome, then three rounds of menu + timeout with no_input between them
NO_KEY_TO_SALES = PL_WELCOME + 3 * (PL_MENU + MENU_TIMEOUT) + 2 * PL_NO_INPUT


def _open_scripts(media: Media) -> list[Script]:
    return [
        Script("key1", LINE_TOLLFREE, (Step(KEY_AT, "1"),), 5.0),
        Script("key2", LINE_TOLLFREE, (Step(KEY_AT, "2"),), 5.0),
        # 3: English; the English menu starts at once, 1 in it picks sales
        Script("key3", LINE_TOLLFREE, (Step(KEY_AT, "3"), Step(6.0, "1")), 8.5),
        # 8: callback; 1 during "press 1 to be called back on this number" confirms it
        Script("key8", LINE_TOLLFREE, (Step(KEY_AT, "8"), Step(4.5, "1")), 8.0),
        # 9: voicemail; intro (7.3 s) + beep, then speech, then # ends the recording
        Script(
            "key9",
            LINE_TOLLFREE,
            (Step(KEY_AT, "9"), Step(10.0, wav=media.caller_wav), Step(13.5, "#")),
            15.0,
        ),
        # the menu is playing (after the welcome): 0 restarts it, then 2 picks support
        Script("key0", LINE_TOLLFREE, (Step(6.0, "0"), Step(9.0, "2")), 11.0),
        Script("nokey", LINE_TOLLFREE, (), NO_KEY_TO_SALES + 4.5),
        Script("shared", LINE_SHARED_COST, (), 7.0),
    ]


def _closed_scripts(tag: str) -> list[Script]:
    # after the welcome the closed menu plays; 9 in it picks voicemail
    return [Script(f"{tag}_closed", LINE_TOLLFREE, (Step(7.0, "9"),), 9.0)]


@dataclass
class Campaign:
    """Every scripted call of the three servers, by script name."""

    calls: dict[str, CallResult]
    servers: dict[str, ServerProcess]

    def __getitem__(self, name: str) -> CallResult:
        return self.calls[name]


@pytest.fixture(scope="module")
def campaign(media: Media) -> Iterator[Campaign]:
    """Three servers (open, night, holiday) and all their callers at once."""
    require_binary("sipp")
    _require_real_server()
    plans = {
        "open": (CLOCK_OPEN, _open_scripts(media)),
        "night": (CLOCK_NIGHT, _closed_scripts("night")),
        "holiday": (CLOCK_HOLIDAY, _closed_scripts("holiday")),
    }
    servers: dict[str, ServerProcess] = {}
    callers: list[Caller] = []
    try:
        for tag, (clock, _scripts) in plans.items():
            workdir = artifact_dir(f"test_ivr_{tag}")
            servers[tag] = ServerProcess(workdir, extra_args=["--clock", clock]).start()
        # the longest call first, so it overlaps everything else
        order = sorted(
            ((tag, s) for tag, (_c, scripts) in plans.items() for s in scripts),
            key=lambda item: -item[1].hangup_at,
        )
        for tag, script in order:
            callers.append(Caller(servers[tag], script, servers[tag].workdir).start())
            time.sleep(0.1)  # spread the INVITEs a little
        calls = {c.script.name: c.finish() for c in callers}
        for tag, srv in servers.items():
            assert srv.proc is not None and srv.proc.poll() is None, (
                f"the {tag} server exited during the calls\n{srv.log_tail()}"
            )
        yield Campaign(calls, servers)
    finally:
        for caller in callers:
            caller.sipp.stop()
            if caller.sink is not None:
                caller.sink.close()
        for srv in servers.values():
            srv.stop()


def _require_real_server() -> None:
    if os.environ.get(STAND_IN_ENV):
        pytest.skip(f"{STAND_IN_ENV} is set: the IVR's events exist only in the real server")


def _assert_sipp_ok(call: CallResult) -> None:
    assert call.sipp.returncode == 0, call.sipp.summary()
    assert call.cdr is not None, f"no CDR for {call.script.name}"
    assert call.cdr["end"] is not None, f"CDR of {call.script.name} never closed: {call.cdr}"


# ------------------------------------------------------------------- inside business hours


def test_open_schedule(campaign: Campaign) -> None:
    """At 10:00 on a Monday the schedule says open and the welcome leads to the main menu."""
    call = campaign["key1"]
    assert [e.data["state"] for e in call.of("ivr_schedule")] == ["open"], call.describe()
    assert [n for n, _ in call.nodes()][:3] == ["welcome_free", "business_hours", "main_menu"], (
        call.describe()
    )


@pytest.mark.parametrize(
    ("name", "key", "target", "queue"),
    [("key1", "1", "sales", "sales"),
     ("key2", "2", "support", "support_queue")],  # an unknown customer: support's own queue
)
def test_menu_key_to_queue(campaign: Campaign, name: str, key: str, target: str,
                           queue: str) -> None:
    """1 and 2, pressed during the welcome (barge-in), pick the sales / support queue."""
    call = campaign[name]
    _assert_sipp_ok(call)
    choices = call.of("ivr_choice", node="main_menu")
    assert [(e.data["key"], e.data["target"]) for e in choices] == [(key, target)], (
        call.describe())
    entered = call.of("ivr_node", node=queue)
    assert entered and entered[0].data["node_type"] == "queue", call.describe()
    assert entered[0].data["language"] == "pl"
    assert not call.of("ivr_invalid") and not call.of("ivr_timeout"), call.describe()
    # whatever the ACD does next, an outcome of the queue names this node
    for transfer in call.of("ivr_transfer"):
        assert transfer.data["node"] == queue, call.describe()
    assert call.cdr is not None and str(call.cdr["digits"]).startswith(key)


def test_menu_key_3_english(campaign: Campaign) -> None:
    """3 switches to English: the menu is repeated in English and the next choice is English."""
    call = campaign["key3"]
    _assert_sipp_ok(call)
    assert call.nodes()[:7] == [
        ("welcome_free", "pl"),
        ("business_hours", "pl"),
        ("main_menu", "pl"),
        ("switch_language", "pl"),
        ("english", "pl"),
        ("business_hours", "en"),
        ("main_menu", "en"),
    ], call.describe()
    choices = [(e.data["key"], e.data["target"]) for e in call.of("ivr_choice")]
    assert choices == [("3", "switch_language"), ("1", "sales")], call.describe()
    assert call.of("ivr_node", node="sales", language="en"), call.describe()
    # what the caller heard: not the Polish menu (3 came during the welcome), the English menu
    # and the English queue announcement
    assert _occurrences(_prompt("menu", "pl", 0.2, 1.5), call.heard) == 0
    assert _occurrences(_prompt("menu", "en", 0.2, 1.5), call.heard) >= 1
    assert _occurrences(_prompt("queue_sales", "en", 0.1, 1.5), call.heard) >= 1


def test_menu_key_8_callback(campaign: Campaign) -> None:
    """8 then 1 (confirm the caller's own number) books a callback for the sales queue."""
    call = campaign["key8"]
    _assert_sipp_ok(call)
    assert call.of("ivr_choice", node="main_menu", key="8", target="callback"), call.describe()
    booked = call.of("ivr_callback", node="callback")
    assert booked and booked[0].data["number"] == CALLER, call.describe()
    assert call.cdr is not None
    rows = _query(
        campaign.servers["open"].db_path, "SELECT * FROM callbacks WHERE call_id = ?",
        (call.cdr["id"],),
    )
    assert len(rows) == 1, [dict(r) for r in rows]
    row = dict(rows[0])
    assert (row["number"], row["caller"], row["queue"], row["status"], row["language"]) == (
        CALLER, CALLER, "sales", "open", "pl"
    ), row


def test_menu_key_9_voicemail(campaign: Campaign, media: Media) -> None:
    """9, then speech after the beep, then #: a WAV in the sales voicemail box and a row."""
    call = campaign["key9"]
    _assert_sipp_ok(call)
    assert call.of("ivr_choice", node="main_menu", key="9", target="voicemail"), call.describe()
    saved = call.of("ivr_voicemail", node="voicemail", saved=True)
    assert saved, call.describe()
    assert call.cdr is not None
    rows = _query(
        campaign.servers["open"].db_path, "SELECT * FROM voicemails WHERE call_id = ?",
        (call.cdr["id"],),
    )
    assert len(rows) == 1, [dict(r) for r in rows]
    row = dict(rows[0])
    assert row["queue"] == "sales" and row["caller"] == CALLER and row["called"] == LINE_TOLLFREE
    assert float(row["seconds"]) > 1.0, row
    wav = Path(row["path"])
    assert wav.is_file(), row
    recorded, rate = audio.read_wav(wav)
    assert rate == 8000 and len(recorded) / rate > 1.0, (wav, len(recorded), rate)
    # the caller's speech is in the message (G.711 round trip: a near copy)
    said, _ = audio.read_wav(media.caller_wav)
    assert audio.active_rms(recorded) > 5 * audio.SILENCE_RMS, "the message is silent"
    assert audio.best_match(said[: 8000], recorded) > 0.8


def test_menu_key_0_repeats(campaign: Campaign) -> None:
    """0 while the menu plays starts it again (no invalid key); 2 then picks support."""
    call = campaign["key0"]
    _assert_sipp_ok(call)
    assert not call.of("ivr_invalid"), call.describe()
    choices = [(e.data["key"], e.data["target"]) for e in call.of("ivr_choice")]
    assert choices == [("2", "support")], call.describe()
    support = call.of("ivr_node", node="support")
    assert support and support[0].data["digits"] == "02", call.describe()
    # the caller heard the start of the menu twice
    assert _occurrences(_prompt("menu", "pl", 0.2, 1.5), call.heard) == 2


def test_no_key_goes_to_sales(campaign: Campaign) -> None:
    """No key three times in a row: a person helps (queue sales)."""
    call = campaign["nokey"]
    _assert_sipp_ok(call)
    timeouts = call.of("ivr_timeout", node="main_menu")
    assert [e.data["count"] for e in timeouts] == [1, 2, 3], call.describe()
    assert not call.of("ivr_choice"), call.describe()
    sales = call.of("ivr_node", node="sales")
    assert sales and sales[0].data["node_type"] == "queue", call.describe()
    assert sales[0].ts >= timeouts[-1].ts
    assert _occurrences(_prompt("menu", "pl", 0.2, 1.5), call.heard) == 3


def test_shared_cost_welcome(campaign: Campaign) -> None:
    """0801123456 starts on the shared-cost welcome, which the caller hears."""
    call = campaign["shared"]
    _assert_sipp_ok(call)
    first = call.of("ivr_node")[0]
    assert (first.data["node"], first.data["node_type"]) == ("welcome_shared_cost", "play"), (
        call.describe()
    )
    assert not call.of("ivr_node", node="welcome_free"), call.describe()
    # past the words it shares with the toll-free welcome: the local-call charge notice
    assert _occurrences(_prompt("welcome_shared_cost", "pl", 4.2, 1.5), call.heard) == 1


@pytest.mark.parametrize(
    "name", ["key1", "key2", "key3", "key8", "key9", "key0", "nokey", "shared", "night_closed",
             "holiday_closed"]
)
def test_caller_hears_audio(campaign: Campaign, name: str) -> None:
    """Every caller receives real prompt audio, never only silence."""
    call = campaign[name]
    assert call.rtp_packets >= 100, f"{name}: only {call.rtp_packets} RTP packets"
    assert audio.active_rms(call.heard) > 5 * audio.SILENCE_RMS, f"{name} heard only silence"


# ------------------------------------------------------------------ outside business hours


@pytest.mark.parametrize(("name", "state"), [("night_closed", "closed"),
                                             ("holiday_closed", "holiday")])
def test_closed_menu(campaign: Campaign, name: str, state: str) -> None:
    """At night and on a holiday the schedule is closed and the closed menu is offered (its 9
    leads to voicemail); the caller hears the opening hours."""
    call = campaign[name]
    _assert_sipp_ok(call)
    assert [e.data["state"] for e in call.of("ivr_schedule")] == [state], call.describe()
    closed = call.of("ivr_node", node="closed")
    assert closed and closed[0].data["node_type"] == "menu", call.describe()
    assert not call.of("ivr_node", node="main_menu"), call.describe()
    assert call.of("ivr_choice", node="closed", key="9", target="voicemail"), call.describe()
    assert _occurrences(_prompt("closed_hours", "pl", 0.2, 1.5), call.heard) == 1
    assert _occurrences(_prompt("menu", "pl", 0.2, 1.5), call.heard) == 0


# ------------------------------------------------------------------------- callcenter check


def _line_col(text: str, needle: str, token: str) -> tuple[int, int]:
    """1-based line and column of ``token`` inside the (unique) line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) == 1, (needle, hits)
    line = text.splitlines()[hits[0]]
    return hits[0] + 1, line.index(token) + 1


Breaker = Callable[[str], tuple[str, str, str]]


def _unknown_type(text: str) -> tuple[str, str, str]:
    broken = text.replace("    type: callback\n", "    type: callbak\n", 1)
    line, col = _line_col(broken, "type: callbak", "callbak")
    return broken, f"{line}:{col}", "unknown node type 'callbak'"


def _unknown_target(text: str) -> tuple[str, str, str]:
    broken = text.replace("      8: callback\n", "      8: calback\n", 1)
    line, col = _line_col(broken, "8: calback", "calback")
    return broken, f"{line}:{col}", "unknown target 'calback'"


def _duplicate_key(text: str) -> tuple[str, str, str]:
    broken = text.replace("      0: repeat\n", "      0: repeat\n      1: support\n", 1)
    line, col = _line_col(broken, "1: support", "1")
    return broken, f"{line}:{col}", "duplicate key"


def _yaml_syntax(text: str) -> tuple[str, str, str]:
    # a tab indents a line (YAML allows only spaces): the error is at the tab itself
    broken = text.replace("    prompts: menu\n", "    prompts: menu\n\ttimeout: 7\n", 1)
    line, col = _line_col(broken, "\ttimeout: 7", "\t")
    return broken, f"{line}:{col}", "YAML"


def _error_at(errors: list[str], file: Path, where: str, what: str) -> bool:
    """True when one error reads ``FILE:LINE:COL: ...what...`` about ``file`` (the path may be
    written relative to the server's working directory, the repository)."""
    for error in errors:
        head, sep, rest = error.partition(f":{where}:")
        if sep and what in rest and (REPO / head).resolve() == file.resolve():
            return True
    return False


def _check_config(tmp: Path, dialplans: Path) -> Path:
    """The repository's config with its dialplans in ``dialplans`` (sounds stay shipped)."""
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    data.update({"dialplans": str(dialplans), "sounds": str(SOUNDS), "database": str(tmp / "db")})
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callcenter", "check", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_check_accepts_the_demo_copy(tmp_path: Path) -> None:
    """Control: the same setup with the unmodified dialplan passes."""
    dialplans = tmp_path / "dialplans"
    dialplans.mkdir()
    shutil.copy(DIALPLAN, dialplans / "hotline.yaml")
    done = _run_check(_check_config(tmp_path, dialplans))
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "breaker", [_unknown_type, _unknown_target, _duplicate_key, _yaml_syntax],
    ids=["unknown-node-type", "unknown-target", "duplicate-menu-key", "yaml-syntax"],
)
def test_check_rejects_broken_dialplan(tmp_path: Path, breaker: Breaker) -> None:
    """`callcenter check` exits 1 and names the file, line and column of the mistake."""
    dialplans = tmp_path / "dialplans"
    dialplans.mkdir()
    broken, where, what = breaker(DIALPLAN.read_text(encoding="utf-8"))
    target = dialplans / "hotline.yaml"
    target.write_text(broken, encoding="utf-8")
    done = _run_check(_check_config(tmp_path, dialplans))
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert _error_at(done.stderr.splitlines(), target, where, what), (
        f"expected {target}:{where}: ... {what}\n{done.stderr}"
    )


# ----------------------------------------------------------------------------- live reload


def _start_call(server: ServerProcess, script: Script, workdir: Path) -> Caller:
    return Caller(server, script, workdir).start()


def _wait_log(server: ServerProcess, event: str, count: int, timeout: float = 6.0) -> None:
    assert wait_until(lambda: len(_log_records(server, event)) >= count, timeout), (
        f"no {count}x {event} in the server log\n{server.log_tail()}"
    )


def _wait_event(server: ServerProcess, prefix: str, type_: str, timeout: float = 8.0) -> None:
    def seen() -> bool:
        cdrs = [r for r in server.cdrs() if str(r["sip_call_id"]).startswith(prefix)]
        return bool(cdrs) and any(e.type == type_ for e in _call_events(server, str(cdrs[0]["id"])))

    assert wait_until(seen, timeout), f"no {type_} for {prefix}\n{server.log_tail()}"


def test_live_reload_broken_then_fixed(artifacts: Path) -> None:
    """A broken dialplan file is not activated (logged), calls in the IVR and new calls go on
    with the last good version, and the fixed file is used by the next call."""
    require_binary("sipp")
    _require_real_server()
    dialplans = artifacts / "dialplans"
    dialplans.mkdir()
    original = DIALPLAN.read_text(encoding="utf-8")
    hotline = dialplans / "hotline.yaml"
    hotline.write_text(original, encoding="utf-8")
    srv = ServerProcess(
        artifacts, overrides={"dialplans": str(dialplans)}, extra_args=["--clock", CLOCK_OPEN]
    ).start()
    callers: list[Caller] = []
    try:
        # A stays in the IVR across every change below; its 1 comes after the fix (when 1 means
        # support in the file) and must still pick sales: A keeps the version it started on
        a_script = Script("reload_a", LINE_TOLLFREE, (Step(16.0, "1"),), 19.0)
        a = _start_call(srv, a_script, artifacts)
        callers.append(a)
        _wait_event(srv, "ivr-reload_a-", "ivr_node")

        hotline.write_text(original.replace("    prompts: menu\n", "    prompts: [menu\n"),
                           encoding="utf-8")
        _wait_log(srv, "dialplan_reload_failed", 1)

        b = _start_call(srv, Script("reload_b", LINE_TOLLFREE, (Step(KEY_AT, "1"),), 4.0),
                        artifacts)
        callers.append(b)
        hotline.write_text(original.replace("      8: callback\n", "      8: calback\n"),
                           encoding="utf-8")
        _wait_log(srv, "dialplan_reload_failed", 2)
        failed = _log_records(srv, "dialplan_reload_failed")
        line, col = _line_col(hotline.read_text(encoding="utf-8"), "8: calback", "calback")
        assert _error_at(failed[1]["errors"], hotline, f"{line}:{col}", "unknown target"), failed
        result_b = b.finish()

        fixed = original.replace("      1: sales\n", "      1: support\n", 1)
        assert fixed != original
        hotline.write_text(fixed, encoding="utf-8")
        _wait_log(srv, "dialplan_reloaded", 1)
        fixed_at = time.time()

        c = _start_call(srv, Script("reload_c", LINE_TOLLFREE, (Step(KEY_AT, "1"),), 4.0),
                        artifacts)
        callers.append(c)
        result_c = c.finish()
        result_a = a.finish()
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()
    finally:
        for caller in callers:
            caller.sipp.stop()
            if caller.sink is not None:
                caller.sink.close()
        srv.stop()

    # B started while the file was broken: the previous version answered it
    _assert_sipp_ok(result_b)
    assert result_b.of("ivr_choice", node="main_menu", key="1", target="sales"), (
        result_b.describe()
    )
    # C started after the fix: 1 now means support
    _assert_sipp_ok(result_c)
    assert result_c.of("ivr_choice", node="main_menu", key="1", target="support"), (
        result_c.describe()
    )
    # A went through the menu after both failed reloads and the fix, on its own version
    _assert_sipp_ok(result_a)
    chosen = result_a.of("ivr_choice", node="main_menu")
    assert [(e.data["key"], e.data["target"]) for e in chosen] == [("1", "sales")], (
        result_a.describe()
    )
    assert chosen[0].ts > fixed_at, "A chose before the fix was loaded: the test timing is off"
    assert audio.active_rms(result_a.heard) > 5 * audio.SILENCE_RMS
