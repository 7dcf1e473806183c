"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

Why not httpx: on a 2-core machine the load generator shares the CPU with the server and Postgres,
and httpx's AsyncClient spends several times more CPU per request than this (see docs/performance.md),
which the benchmark would then count as server slowness. This client speaks just what the serving
benchmark needs: one request at a time per connection, Content-Length or chunked bodies.
"""

from __future__ import annotations

import asyncio
import contextlib


class HttpError(RuntimeError):
    pass


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        fixed = {"Host": f"{host}:{port}", "Accept": "application/json", **headers}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, body). The connection is kept open unless the server says `Connection: close`."""
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self._fixed
        if body:
            head += b"Content-Type: application/json\r\n"
        writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await reader.readline()
        if not status_line:
            await self.close()
            raise HttpError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = b"close" in value.lower()
        payload = await (self._chunked(reader) if chunked else reader.readexactly(length))
        if close:
            await self.close()
        return status, payload

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readline()
