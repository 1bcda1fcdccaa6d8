"""A real mosquitto broker for one test, and an aiomqtt subscriber running in a thread.

    with Mosquitto(workdir) as broker, Subscriber(broker.port, "callcenter/#") as sub:
        ...
        sub.wait_for(lambda msgs: any(m.topic == "callcenter/events" for m in msgs), 10)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ports import allocate


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Mosquitto:
    """``mosquitto -c conf`` on 127.0.0.1:<free port>, no persistence, anonymous allowed."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or allocate(1)[0]
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type all\n", encoding="utf-8")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            if "running" in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Subscriber:
    """An aiomqtt client in its own thread and loop, collecting every message it gets;
    reconnects on its own (so it survives a broker restart)."""

    def __init__(self, port: int, topic: str = "callcenter/#") -> None:
        self.port, self.topic = port, topic
        self.messages: list[Message] = []
        self.connects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        import aiomqtt

        while not self._stop.is_set():
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=None) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connects += 1
                    while not self._stop.is_set():
                        try:
                            msg = await asyncio.wait_for(anext(client.messages), 0.2)
                        except TimeoutError:
                            continue
                        payload = msg.payload if isinstance(msg.payload, bytes) else \
                            str(msg.payload).encode()
                        with self._lock:
                            self.messages.append(Message(str(msg.topic), payload,
                                                         bool(msg.retain), time.time()))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate: Callable[[list[Message]], object], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return True
            time.sleep(0.1)
        return bool(predicate(self.snapshot()))

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.connects < count:
            time.sleep(0.05)
        return self.connects >= count

    def __enter__(self) -> Subscriber:
        self._thread.start()
        if not self.wait_connected():
            raise RuntimeError(f"subscriber could not connect to 127.0.0.1:{self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
