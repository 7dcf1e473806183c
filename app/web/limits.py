"""A door in front of the app: at most N requests inside at once per process; the rest queue (FIFO).

Why: a request holds its database connection from its first query to its commit, across several trips
through the threadpool. With more requests inside than the pool has connections, requests holding a
connection wait for a thread while threads wait for a connection, until the pool's timeout turns them
into 500s. Waiting at the door holds neither, and serves overload in arrival order. N is the pool's size
(PREFSTUDIO_DB_POOL_SIZE), not its size plus overflow: the pool closes an overflow connection as soon as
it is given back, so with more requests inside than the pool keeps, every request past the tenth opened
a new Postgres connection (a fork and a cold backend, several ms of CPU) and closed it again. The
overflow stays for the requests that need a second connection (an export streams on its own).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PREFIXES = ("/static/",)  # files from disk: no connection needed


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _door(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; tests may run one app in several loops in turn.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.limit), loop
        return self._semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        async with self._door():
            await self.app(scope, receive, send)
