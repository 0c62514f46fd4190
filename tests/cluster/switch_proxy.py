"""A TCP proxy that the tests steer: it forwards to one server, can cut the
server side of its connections while leaving the client side open (the client
notices nothing, the server sees its transport close), and can move to another
server (its client sides close, so the clients reconnect, to the new server)."""

from __future__ import annotations

import asyncio
import contextlib


class _Pair:
    __slots__ = ("client", "held", "server")

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.held = False  # the server side is cut: keep the client side open


class SwitchProxy:
    """``url`` leads to ``127.0.0.1:<target>``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        loop = asyncio.get_running_loop()
        for task in (
            loop.create_task(self._pump(reader, up_writer, pair, to_server=True)),
            loop.create_task(self._pump(up_reader, writer, pair, to_server=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: _Pair,
        *,
        to_server: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if pair.held and to_server:
                    continue  # the server side is gone: what the client sends is lost
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not (pair.held and not to_server):
                pair.client.close()
                self._pairs.discard(pair)
            pair.server.close()

    def cut_servers(self) -> None:
        """Close the server side of every connection; keep the client sides open."""
        for pair in self._pairs:
            pair.held = True
            pair.server.close()

    def switch(self, target: int) -> None:
        """Lead new connections to ``target`` and close the current ones."""
        self.target = target
        for pair in list(self._pairs):
            pair.held = False
            pair.client.close()
            pair.server.close()
        self._pairs.clear()

    async def close(self) -> None:
        self.switch(self.target)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
