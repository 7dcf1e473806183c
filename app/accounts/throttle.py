"""Sign-in throttling: failed sign-ins counted per account and per client address, in a sliding window.

Kept in the web process's memory (one counter set per process; `prefstudio serve --workers N` allows up
to N times the limit). A successful sign-in clears its account's failures. Checked before the password
is verified, so a locked-out guesser learns nothing and costs no argon2 time.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from app.errors import TooManyAttempts


class LoginThrottle:
    def __init__(self, *, per_account: int, per_address: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, *, username: str, address: str) -> None:
        """Raise TooManyAttempts if this account or this address failed too often lately."""
        now = self.clock()
        with self._lock:
            for key, limit, what in ((("account", username.strip().lower()), self.per_account,
                                      "this account"),
                                     (("address", address), self.per_address, "your address")):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(1, int(times[0] + self.window - now + 59) // 60)
                    raise TooManyAttempts(
                        f"too many failed sign-ins for {what}: try again in {wait} minute"
                        f"{'s' if wait != 1 else ''}", field="password")

    def failed(self, *, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("account", username.strip().lower()), ("address", address)):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # forget idle keys rather than grow without bound
                for stale in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window]:
                    del self._failures[stale]

    def succeeded(self, *, username: str) -> None:
        with self._lock:
            self._failures.pop(("account", username.strip().lower()), None)
