"""request_id records in an SQLite file on disk, so exactly-once outlives a crash.

The store a single replica uses by default. One process owns the folder: it
holds an exclusive lock on FOLDER/lock for as long as it runs, so a second
process pointed at the same folder is refused at start rather than sharing the
records (across processes and hosts, --redis-url is the answer). The kernel
drops the lock when the process dies, however it dies.

Every write is a committed transaction in WAL mode before the call that made
it returns, so a claim is on disk before its CreateRoom leaves for AWS.
synchronous=NORMAL makes a commit survive a crash of the process (SIGKILL, an
OOM kill): the kernel has the bytes. A power cut or a kernel panic may lose
the last commits; that is the price of not calling fsync on every claim.

Since the lock proves every earlier owner is dead, a process that opens the
folder turns their pending claims into unknown ones at once: the next call
with such a request_id looks the room up, rather than waiting out a lease.

Calls run on the event loop's thread: each is one short transaction on a file
no other process touches, cheaper than a hop to a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from ivschat_grpc.core.idempotency import Claim, StateUnavailable, Verdict, Waiters, new_token

DATABASE: Final = "idempotency.sqlite3"
LOCK: Final = "lock"
SCHEMA_VERSION: Final = 1
# Expired records are deleted in one sweep at most this often.
_PURGE_EVERY_S: Final = 60.0
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  state TEXT NOT NULL,
  token TEXT NOT NULL,
  lease_until REAL NOT NULL,
  expires_at REAL NOT NULL,
  room BLOB NOT NULL DEFAULT x''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_expiry ON requests (expires_at);
"""


# SQLite's names for a file that is not, or no longer, a sound database.
_DAMAGED: Final = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})


def _one_line(error: BaseException) -> str:
    """An error's text on one line: SQLite's integrity reports span several."""
    return " ".join(str(error).split())


class StateDirError(Exception):
    """StateDirError is a state folder the service cannot use; its text names the path."""


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/ivschat-grpc, or ~/.local/state/ivschat-grpc when that is unset.

    A relative XDG_STATE_HOME is ignored, as the XDG base directory spec says.
    """
    xdg = environ.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "ivschat-grpc"
    return Path(environ.get("HOME") or "~").expanduser() / ".local/state/ivschat-grpc"


class SqliteStore:
    """SqliteStore keeps records in FOLDER/idempotency.sqlite3: exactly-once across restarts."""

    def __init__(
        self, db: sqlite3.Connection, lock_fd: int, retention_s: float, lease_s: float
    ) -> None:
        self._db = db
        self._lock_fd = lock_fd
        self._retention_s = retention_s
        self._lease_s = lease_s
        self._waiters = Waiters()
        self._purged_at = 0.0

    @classmethod
    def open(cls, folder: Path, retention_s: float, lease_s: float) -> SqliteStore:
        """Lock folder, open (or create) its database, and take over dead owners' claims."""
        flag = "--state-dir"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock_fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StateDirError(f"{flag} {folder}: cannot write there: {e.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise StateDirError(
                f"{flag} {folder}: another ivschat-grpc process uses this folder; give each "
                "process its own --state-dir, or share records through --redis-url"
            ) from None
        path = folder / DATABASE
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # The records name rooms and their tags: this user's alone (the
            # -wal and -shm files take the database's mode).
            os.chmod(path, 0o600)
        except (sqlite3.Error, OSError) as e:
            os.close(lock_fd)
            raise StateDirError(f"{flag} {folder}: cannot open {path}: {_one_line(e)}") from None
        try:
            _prepare(db)
        except sqlite3.Error as e:
            db.close()
            os.close(lock_fd)
            if getattr(e, "sqlite_errorname", "") in _DAMAGED or "quick_check" in str(e):
                raise StateDirError(
                    f"{flag} {folder}: {path} is not a usable idempotency database "
                    f"({_one_line(e)}); move it aside to start afresh, which forgets every "
                    "request_id it holds"
                ) from None
            # A full disk or an I/O error: the file may be fine, so keep it.
            raise StateDirError(f"{flag} {folder}: cannot use {path}: {_one_line(e)}") from None
        except StateDirError as e:
            db.close()
            os.close(lock_fd)
            raise StateDirError(f"{flag} {folder}: {e}") from None
        return cls(db, lock_fd, retention_s, lease_s)

    def close(self) -> None:
        """Close the database and give up the folder."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        os.close(self._lock_fd)

    def _run(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        """One statement, committed on its own (a transaction of its own in autocommit)."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise StateUnavailable(str(e)) from e

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            # SQLite's text is fixed (for example "database or disk is full").
            raise StateUnavailable(str(e)) from e

    async def claim(self, request_id: str, fingerprint: str) -> Claim:
        now = time.time()
        if now - self._purged_at > _PURGE_EVERY_S:
            self._run("DELETE FROM requests WHERE expires_at <= ?", (now,))
            self._purged_at = now
        # A new request_id, the usual case, is one statement.
        token = new_token()
        inserted = self._run(
            "INSERT INTO requests VALUES (?, ?, 'pending', ?, ?, ?, x'') "
            "ON CONFLICT (request_id) DO NOTHING",
            (request_id, fingerprint, token, now + self._lease_s, now + self._retention_s),
        )
        if inserted.rowcount == 1:
            return Claim(Verdict.OWNER, token)
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, state, lease_until, expires_at, room FROM requests "
                "WHERE request_id = ?",
                (request_id,),
            ).fetchone()
            if row is None or row[3] <= now:
                db.execute(
                    "INSERT OR REPLACE INTO requests VALUES (?, ?, 'pending', ?, ?, ?, x'')",
                    (request_id, fingerprint, token, now + self._lease_s, now + self._retention_s),
                )
                return Claim(Verdict.OWNER, token)
            stored_fingerprint, state, lease_until, expires_at, room = row
            if stored_fingerprint != fingerprint:
                return Claim(Verdict.MISMATCH)
            if state == "done":
                return Claim(Verdict.DONE, room=bytes(room))
            if state == "unknown" or lease_until < now:
                db.execute(
                    "UPDATE requests SET state = 'pending', token = ?, lease_until = ?, "
                    "expires_at = ? WHERE request_id = ?",
                    (token, now + self._lease_s, self._kept_until(expires_at, now), request_id),
                )
                return Claim(Verdict.OWNER, token, resolve_first=True)
            return Claim(Verdict.WAIT)

    def _kept_until(self, expires_at: float, now: float) -> float:
        # A record in use must outlive its lease, whatever is left of its retention.
        return max(expires_at, now + 2 * self._lease_s)

    async def finish(self, request_id: str, token: str, room: bytes) -> bool:
        try:
            cursor = self._run(
                "UPDATE requests SET state = 'done', room = ? WHERE request_id = ? AND token = ?",
                (room, request_id, token),
            )
            return cursor.rowcount == 1
        finally:
            self._waiters.notify(request_id)

    async def peek(self, request_id: str) -> bytes:
        row = self._run(
            "SELECT room FROM requests WHERE request_id = ? AND state = 'done'", (request_id,)
        ).fetchone()
        return bytes(row[0]) if row is not None else b""

    async def renew(self, request_id: str, token: str) -> bool:
        now = time.time()
        cursor = self._run(
            "UPDATE requests SET lease_until = ?, expires_at = max(expires_at, ?) "
            "WHERE request_id = ? AND token = ? AND state = 'pending'",
            (now + self._lease_s, now + 2 * self._lease_s, request_id, token),
        )
        return cursor.rowcount == 1

    async def release(self, request_id: str, token: str, *, unknown: bool) -> None:
        try:
            if unknown:
                self._run(
                    "UPDATE requests SET state = 'unknown' WHERE request_id = ? AND token = ?",
                    (request_id, token),
                )
            else:
                self._run(
                    "DELETE FROM requests WHERE request_id = ? AND token = ?", (request_id, token)
                )
        finally:
            self._waiters.notify(request_id)

    async def wait(self, request_id: str, timeout_s: float | None) -> None:
        row = self._run(
            "SELECT state, lease_until FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None or row[0] != "pending":
            return
        # The lease is wall-clock time on disk; waiting is on the monotonic clock.
        deadline = time.monotonic() + max(0.0, row[1] - time.time())
        if timeout_s is not None:
            deadline = min(deadline, time.monotonic() + timeout_s)
        await self._waiters.wait(request_id, deadline)


def _prepare(db: sqlite3.Connection) -> None:
    """WAL mode, the schema, a check that the file is whole, and the takeover of dead claims."""
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode})")
    db.execute("PRAGMA synchronous = NORMAL")
    # No other ivschat-grpc process opens the file (the lock sees to that). A
    # tool that holds it locked must not freeze the event loop for long: a
    # claim fails STATE_UNAVAILABLE instead.
    db.execute("PRAGMA busy_timeout = 50")
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {check}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StateDirError(
            f"the database's schema is version {version}, newer than this ivschat-grpc's "
            f"{SCHEMA_VERSION}: run a newer release, or another --state-dir"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # This process holds the folder's lock, so every pending owner is dead:
        # its room may exist, and the next call looks it up at once.
        db.execute("UPDATE requests SET state = 'unknown' WHERE state = 'pending'")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
