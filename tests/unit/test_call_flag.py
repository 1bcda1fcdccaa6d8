"""``Flag``: an asyncio.Event whose waits take plain futures (no task per wait)."""

from __future__ import annotations

import asyncio

from callcenter.calls.call import Flag, fired


def test_a_flags_waiters_are_futures_done_when_it_is_set() -> None:
    async def run() -> None:
        flag = Flag()
        first, cancelled = flag.waiter(), flag.waiter()
        assert not isinstance(first, asyncio.Task) and not first.done()
        cancelled.cancel()
        tasks = len(asyncio.all_tasks())
        waiting = asyncio.ensure_future(flag.wait())  # an Event's own wait still works
        flag.set()
        assert first.done() and first.result() is True and cancelled.cancelled()
        assert await waiting is True
        assert flag.waiter().done()  # set already: done at once
        flag.clear()
        later = fired(flag)
        assert not later.done() and len(asyncio.all_tasks()) == tasks
        flag.set()
        assert later.done()
        plain = asyncio.Event()
        other = fired(plain)  # not a Flag: a task that waits
        assert isinstance(other, asyncio.Task)
        plain.set()
        assert await other is True

    asyncio.run(run())


def test_a_long_lived_flag_keeps_only_the_waits_still_pending() -> None:
    """A caller waiting an hour in a queue waits on its leg's end once per prompt: the
    cancelled waits are let go, not kept until the call ends."""

    async def run() -> None:
        flag = Flag()
        pending = flag.waiter()
        for _ in range(1000):
            flag.waiter().cancel()
        assert len(flag._futures) <= 17
        flag.set()
        assert pending.done()

    asyncio.run(run())
