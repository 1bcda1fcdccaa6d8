"""Preview reservations (PreviewBook) and the machine-message silence watch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from callcenter.dialer.message import SilenceWatch
from callcenter.dialer.preview import PreviewBook, PreviewDesk, PreviewError, view


def contact(cid: int) -> dict[str, object]:
    return {"id": cid, "number": f"+4860000000{cid}", "name": f"K {cid}",
            "fields": '{"produkt": "x"}', "attempts": 0}


def test_reserve_view_and_expiry() -> None:
    book = PreviewBook()
    r = book.reserve("c", "1001", contact(1), 100.0, 30)
    shown = view(r, 110.0)
    assert shown["state"] == "preview" and shown["reserved_seconds"] == 20.0
    assert shown["fields"] == {"produkt": "x"} and shown["agent"] == "1001"
    assert book.held_ids("c") == {1} and book.held_ids("other") == set()
    assert book.of_agent("c", "1001", 129.0) is r
    assert book.of_agent("c", "1001", 130.0) is None  # the hold ran out: released
    assert book.held_ids("c") == set()
    book.reserve("c", "1002", contact(1), 131.0, 30)  # free again, for anyone


def test_one_hold_per_contact_and_per_agent() -> None:
    book = PreviewBook()
    book.reserve("c", "1001", contact(1), 0.0, 30)
    with pytest.raises(PreviewError) as exc:
        book.reserve("c", "1002", contact(1), 1.0, 30)
    assert exc.value.status == 409
    with pytest.raises(PreviewError):
        book.reserve("c", "1001", contact(2), 1.0, 30)
    book.reserve("d", "1001", contact(1), 1.0, 30)  # another campaign is independent


def test_take_dial_and_done() -> None:
    book = PreviewBook()
    book.reserve("c", "1001", contact(1), 0.0, 30)
    with pytest.raises(PreviewError) as exc:
        book.take("c", 1, "1002", 1.0)  # not yours
    assert exc.value.status == 409
    r = book.take("c", 1, "1001", 1.0)
    assert r.state == "dialing"
    assert book.expire(1000.0) == []  # a dialling contact is not expired
    with pytest.raises(PreviewError):
        book.take("c", 1, None, 2.0)  # already dialling
    with pytest.raises(PreviewError):
        book.release("c", 1, 2.0)  # cannot skip a call in progress
    assert book.of_agent("c", "1001", 2.0) is None  # the agent may preview the next one
    book.done("c", 1)
    assert book.held_ids("c") == set()


def test_skip_releases_and_unknown_is_404() -> None:
    book = PreviewBook()
    book.reserve("c", "1001", contact(1), 0.0, 30)
    assert book.release("c", 1, 1.0).agent == "1001"
    assert book.held_ids("c") == set()
    for call in (lambda: book.release("c", 1, 2.0), lambda: book.take("c", 1, None, 2.0)):
        with pytest.raises(PreviewError) as exc:
            call()
        assert exc.value.status == 404
    book.reserve("c", "1001", contact(1), 0.0, 30)
    with pytest.raises(PreviewError) as exc:
        book.take("c", 1, None, 31.0)  # expired before the dial
    assert exc.value.status == 404


def test_silence_watch() -> None:
    loud = (np.ones(160, dtype="<i2") * 3000).tobytes()
    quiet = (np.ones(160, dtype="<i2") * 20).tobytes()
    watch = SilenceWatch(now=0.0)
    watch.feed(loud, 0.5)
    watch.feed(quiet, 1.2)
    assert watch.quiet_for(1.2) == pytest.approx(0.7)
    watch.feed(quiet, 1.6)
    assert watch.quiet_for(1.6) >= 1.0


def test_no_preview_dial_while_draining() -> None:
    """A drain stops the pacing loop; an agent's own preview dial is refused too (503)."""
    runner = SimpleNamespace(dialling=False,
                             live={"p": SimpleNamespace(cfg=SimpleNamespace(mode="preview"))})
    with pytest.raises(PreviewError) as refused:
        PreviewDesk(cast(Any, runner)).dial("p", 1, "1001")
    assert refused.value.status == 503 and "draining" in str(refused.value)
