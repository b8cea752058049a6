"""One writer per run: an advisory lock keyed by the run's settings, in a file next to the cache.

Two `ctrust run` processes with identical settings on one cache would otherwise both find the
same prompts missing and both generate them (each commits only after its batch). With the lock
the second one says which process holds the run, waits, and then resumes from the cache with
nothing left to generate. Runs with different settings never wait for each other.

`flock` locks belong to an open file description, so two runs in one process (TUI threads)
exclude each other too, and the kernel drops the lock when a holder dies (even on SIGKILL): a
stale lock file is harmless. The holder unlinks its file on release; a waiter that wins the lock
on an unlinked file notices (inode check) and retries, so two holders can never coexist.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import Cancelled
from ..trust.types import canonical_json, sha256_hex

try:  # POSIX; elsewhere runs are not locked (and `notice` says so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.25


def lock_path(db_path: Path, settings: Mapping[str, Any]) -> Path:
    """`cache.db.run-<16 hex>.lock`: one file per distinct run settings, beside the cache."""
    key = sha256_hex(canonical_json(dict(settings)))[:16]
    return db_path.with_name(f"{db_path.name}.run-{key}.lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"process {int(info['pid'])} on {str(info['host'])[:64]} (since {str(info['since'])[:20]})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """Acquire with the run's settings before generating; release when the run ends."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._fd: int | None = None
        self._path: Path | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, settings: Mapping[str, Any], *, notice: Callable[[str], None] = lambda m: None,
                should_stop: Callable[[], bool] = lambda: False, poll: float = POLL_SECONDS) -> None:
        """Block until this run's lock is ours; `notice` hears once who holds it; `should_stop`
        (Ctrl-C, SIGTERM, the TUI's cancel) ends the wait with `Cancelled`."""
        if fcntl is None:  # pragma: no cover
            notice("runs are not locked on this platform: do not start the same run twice at once")
            return
        path = lock_path(self.db_path, settings)
        told = False
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # cannot create a file beside the cache: run unlocked, say so
                notice(f"cannot create the run lock {path.name} ({exc.strerror}); running without it")
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not told:
                    notice(f"a run with the same settings is in progress in {_holder(path)}; "
                           "waiting for it to finish, then resuming from the cache (Ctrl-C stops waiting)")
                    told = True
                if should_stop():
                    raise Cancelled() from None
                time.sleep(poll)
                continue
            try:
                same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous holder unlinked it while we waited: lock the new one
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
            self._fd, self._path = fd, path
            return

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._path is not None:
                self._path.unlink(missing_ok=True)  # while still locked: see the module docstring
        except OSError:
            pass
        finally:
            os.close(self._fd)  # drops the flock
            self._fd, self._path = None, None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
