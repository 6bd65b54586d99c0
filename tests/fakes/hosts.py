"""Several hosts on one machine, for tests of what crosses a network: each host is a Linux
network namespace joined to this one by a veth pair, with its own address and no view of
this machine's loopback. A TCP forwarder on this side of each link stands in for a service
reached over the network (PostgreSQL listens on loopback only here).

Needs root and ``ip netns`` (iproute2); :func:`available` says why not, for a skip.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass


def available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2's ip command is not installed"
    probe = f"tt{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Host:
    name: str  # the namespace
    address: str  # the host's own address
    gateway: str  # this machine's address as the host sees it

    def command(self, *argv: str) -> list[str]:
        """``argv`` run on this host."""
        return ["ip", "netns", "exec", self.name, *argv]


class Hosts:
    """``with Hosts(2, forward={5432: ("127.0.0.1", 5432)}) as hosts:`` — two hosts, and on
    each link this machine's side forwards port 5432 to the local PostgreSQL."""

    def __init__(self, count: int, forward: dict[int, tuple[str, int]]):
        self.tag = uuid.uuid4().hex[:6]
        self.hosts = [Host(f"tt{self.tag}{i}", f"10.{200 + i}.{int(self.tag[:2], 16) % 250}.2",
                           f"10.{200 + i}.{int(self.tag[:2], 16) % 250}.1") for i in range(count)]
        self.forward = forward
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hosts-forwarder", daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    def __enter__(self) -> list[Host]:
        try:
            for i, host in enumerate(self.hosts):
                outside, inside = f"tt{self.tag}{i}o", f"tt{self.tag}{i}i"
                _ip("netns", "add", host.name)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", host.name)
                _ip("addr", "add", f"{host.gateway}/24", "dev", outside)
                _ip("link", "set", outside, "up")
                _ip("netns", "exec", host.name, "ip", "addr", "add", f"{host.address}/24", "dev", inside)
                _ip("netns", "exec", host.name, "ip", "link", "set", inside, "up")
                _ip("netns", "exec", host.name, "ip", "link", "set", "lo", "up")
            self._thread.start()
            for host in self.hosts:
                for port, target in self.forward.items():
                    server = asyncio.run_coroutine_threadsafe(self._listen(host.gateway, port, target),
                                                              self._loop).result(10)
                    self._servers.append(server)
        except Exception:
            self.__exit__()
            raise
        return self.hosts

    async def _listen(self, address: str, port: int, target: tuple[str, int]) -> asyncio.base_events.Server:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        return await asyncio.start_server(serve, address, port)

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            self._loop.call_soon_threadsafe(server.close)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)
