"""Hand runner events from a worker thread to the UI in batches (never one UI update per token).

The runner calls `emit` from its own thread for every event, including one per decoding step.
`EventBatcher` appends to a locked buffer; a small ticker thread flushes the buffer at most
`rate` times a second through one `post` call (a thread-safe `post_message`). `close()` flushes
what is left. Token chunks of one flush are applied in a single UI update by the screen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from textual.message import Message


class EventBatch(Message):
    """A batch of runner (or inspect) events, in emission order."""

    def __init__(self, events: list[Any], tag: str = "run") -> None:
        super().__init__()
        self.events = events
        self.tag = tag


class EventBatcher:
    def __init__(self, post: Callable[[list[Any]], None], rate: float = 15.0) -> None:
        self._post = post
        self._interval = 1.0 / rate
        self._lock = threading.Lock()
        self._buf: list[Any] = []
        self._closed = threading.Event()
        self.flushes = 0
        self.events = 0
        self._ticker = threading.Thread(target=self._tick, name="ctrust-ui-batcher", daemon=True)
        self._ticker.start()

    def emit(self, event: Any) -> None:
        with self._lock:
            self._buf.append(event)
            self.events += 1

    __call__ = emit

    def flush(self) -> None:
        with self._lock:
            batch, self._buf = self._buf, []
        if batch:
            self.flushes += 1
            try:
                self._post(batch)
            except Exception:  # the app is shutting down: nothing left to show
                pass

    def _tick(self) -> None:
        while not self._closed.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self._ticker.join(timeout=1.0)
        self.flush()

    def __enter__(self) -> EventBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
