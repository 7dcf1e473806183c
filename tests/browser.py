"""A live server on 127.0.0.1 and Debian's Chromium for the browser tests.

`watched_page` records what must never happen on a page: dialogs (alert/confirm/prompt), requests to any
origin but the server's, script errors, and Content-Security-Policy violations (an injected script the
policy had to stop is a failure of escaping, even though nothing ran). `snapshot_on_failure` saves a
screenshot next to the test's temporary files when an assertion fails.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.web.csrf import SESSION_COOKIE

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Watch:
    base: str
    problems: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(self, request: Any) -> None:
        if not request.url.startswith(self.base + "/"):
            self.problems.append(f"request to {request.url}")

    def on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.problems.append(f"CSP: {message.text[:200]}")


def watched_page(browser: Any, base: str, cookie: str | None) -> tuple[Any, Watch]:
    context = browser.new_context()
    if cookie:
        context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": base}])
    page = context.new_page()
    watch = Watch(base)
    page.on("dialog", watch.on_dialog)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"script error: {exc}"))
    return page, watch


@contextmanager
def snapshot_on_failure(page: Any, directory: Path, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        path = directory / f"{name.replace('/', '_')}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failing page: {path}")
        except Exception as exc:  # the browser may be the thing that failed
            print(f"no screenshot: {exc}")
        raise
