"""A delaying TCP proxy on loopback: a slow link (a satellite's 600 ms round
trip) between a browser and the served app, for benchmarks only.

Every chunk is held `one_way` seconds in each direction, in order; a new
connection's first bytes wait one round trip more (the TCP handshake a real
link would cost). `down` makes it refuse connections and cut open ones, like a
link that is gone. Bounded (connections, bytes held per direction) and it
stops itself after `lifetime` seconds, so a crashed benchmark leaves nothing
running.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

CHUNK = 64 * 1024


class SlowLink:
    """The proxy, run on its own event loop in a daemon thread."""

    def __init__(self, target_port: int, *, one_way: float = 0.3, max_connections: int = 64,
                 max_held_bytes: int = 32 * 1024 * 1024, lifetime: float = 900.0) -> None:
        self.target_port = target_port
        self.one_way = one_way
        self.max_connections = max_connections
        self.max_queued_chunks = max(1, max_held_bytes // CHUNK)
        self.lifetime = lifetime
        self.down = False
        self.connections = 0  # accepted and forwarded, since the last reset()
        self.refused = 0
        self.port = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="slowlink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SlowLink:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("slow link did not start")
        return self

    def stop(self) -> None:
        if self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def reset(self) -> None:
        self.connections = self.refused = 0

    def set_down(self, down: bool) -> None:
        """Down: new connections are refused and open ones cut."""
        self.down = down
        if down:
            self._loop.call_soon_threadsafe(self._cut_all)

    def __enter__(self) -> SlowLink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=self.lifetime)
        except TimeoutError:
            pass
        server.close()
        self._cut_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    def _cut_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down or len(self._open) >= self.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        accepted = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._open.update((writer, up_writer))
        handshake_done = accepted + 2 * self.one_way
        try:
            await asyncio.gather(self._pipe(reader, up_writer, handshake_done), self._pipe(up_reader, writer, 0.0))
        except asyncio.CancelledError:
            pass  # stopping: the connection is cut below (and asyncio's server callback wants no exception)
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, not_before: float) -> None:
        """Copy reader to writer, each chunk `one_way` after it was read (or after `not_before`)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(self.max_queued_chunks)

        async def read() -> None:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                await queue.put((max(time.monotonic(), not_before) + self.one_way, data))
                if not data:
                    return

        async def write() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if not data:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    writer.transport.abort()
                    while (await queue.get())[1]:  # let read() finish
                        pass
                    return

        await asyncio.gather(read(), write())
