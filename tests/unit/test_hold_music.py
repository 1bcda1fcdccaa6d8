"""flows.hold_music: a queue's caller hears its queue's music in the queue's language (the
language's file first, then the common one), a missing file falls back to the default, a call
from no queue gets the default."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from callcenter.calls import flows
from callcenter.calls.call import Call
from callcenter.media.prompts import PromptCache
from tests.helpers import audio


def played(root: Path, music: str, queue: str | None, language: str | None) -> str:
    got: list[Any] = []
    services: Any = SimpleNamespace(prompts=PromptCache(root),
                                    music=lambda q: music if q == "sales" else "hold_music")
    call = Call(caller="0221234567", called="0800000001", source="trunk:pstn", queue=queue,
                language=language)
    channel = SimpleNamespace(closed=False, play=lambda prompt, **kw: got.append(prompt))
    leg: Any = SimpleNamespace(call=call, channel=channel, codec="PCMU")
    flows.hold_music(services, leg)
    return str(Path(got[0].name).relative_to(root))


def test_queue_music_and_language(tmp_path: Path) -> None:
    for name in ("hold_music.wav", "en/hold_music.wav", "jazz.wav", "pl/jazz.wav"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        audio.write_wav(tmp_path / name, np.zeros(160))
    assert played(tmp_path, "jazz", "sales", "pl") == "pl/jazz.wav"
    assert played(tmp_path, "jazz", "sales", "en") == "jazz.wav"
    assert played(tmp_path, "hold_music", "sales", "en") == "en/hold_music.wav"
    assert played(tmp_path, "rock", "sales", "en") == "hold_music.wav"  # missing: the default
    assert played(tmp_path, "jazz", None, None) == "hold_music.wav"
