"""Run a `prefstudio` CLI command under cProfile in every thread, timing CPU rather than wall time.

Plain `python -m cProfile` follows only the main thread, while the server's database work runs in the
threadpool. Here every thread started after this module loads (the threadpool's included) gets its own
cProfile.Profile with `time.thread_time` as its clock, so time spent waiting for Postgres, the GIL or
work counts for nothing; on exit (SIGTERM) the profiles are merged into one pstats file
(PREFSTUDIO_PROFILE_OUT). Read it with `python -m pstats FILE` or bench/serving.py's summary.

    python bench/_profile.py serve --port 8000      (what bench/serving.py --profile does)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import sys
import threading
import time
from typing import Any

_profiles: list[cProfile.Profile] = []


def _start_profiling(frame: Any, event: str, arg: Any) -> None:
    """threading.setprofile hook: runs once in each new thread and replaces itself with a cProfile."""
    profile = cProfile.Profile(time.thread_time)
    _profiles.append(profile)
    profile.enable()


def main() -> None:
    out = os.environ.get("PREFSTUDIO_PROFILE_OUT", "server.prof")

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    threading.setprofile(_start_profiling)
    from app.cli import app

    main_profile = cProfile.Profile(time.thread_time)
    _profiles.append(main_profile)
    main_profile.enable()
    try:
        app(sys.argv[1:], standalone_mode=False)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in _profiles[1:]:
            profile.create_stats()
            if profile.stats:  # type: ignore[attr-defined]
                stats.add(profile)
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
