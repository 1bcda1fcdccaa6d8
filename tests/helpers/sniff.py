"""Watch UDP datagrams on the loopback interface as they travel (an AF_PACKET socket: Linux,
needs CAP_NET_RAW, e.g. root or a user namespace of one's own); to check what the wire
carries, e.g. that RTP payloads are encrypted."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

ETH_P_ALL = 0x0003


class UdpSniffer:
    """Collect (source port, destination port, UDP payload) of the IPv4 datagrams on `lo`
    that `wanted(source port, destination port)` picks (other tests share the interface)."""

    def __init__(self, wanted: Callable[[int, int], bool], max_packets: int = 20000) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("lo", 0))
        self.wanted = wanted
        self.sock.settimeout(0.2)
        self.packets: list[tuple[int, int, bytes]] = []
        self.max_packets = max_packets
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="sniffer")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop and len(self.packets) < self.max_packets:
            try:
                frame, info = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if info[2] == socket.PACKET_OUTGOING:
                continue  # loopback shows each datagram twice: keep the incoming copy
            ip = frame[14:]  # the Ethernet header loopback frames carry
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            ihl = (ip[0] & 0x0F) * 4
            sport, dport = struct.unpack_from("!HH", ip, ihl)
            if self.wanted(sport, dport):
                self.packets.append((sport, dport, bytes(ip[ihl + 8 :])))

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> UdpSniffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
