"""Backend factories for sweep tests that run inside Ray workers (importable there: classes, not
closures, so Ray pickles them by reference to this module)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fakes import FakeBackend

from ctrust_tui.compress.fingerprint import model_fingerprint
from ctrust_tui.runner import real_backend


class SlowBackend:
    """The real engine with a pause after each batch, so a test can kill the worker mid-cell."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.model_fingerprint, self.compression = inner.model_fingerprint, inner.compression
        self.device, self.info = inner.device, inner.info

    def render(self, messages):
        return self.inner.render(messages)

    def generate(self, requests, on_chunks=None, should_stop=None, on_batch=None):
        for batch in self.inner.generate(requests, on_chunks, should_stop, on_batch):
            time.sleep(self.delay)
            yield batch

    def close(self) -> None:
        self.inner.close()


class SlowFactory:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, model, spec, cfg, progress, cancel):
        return SlowBackend(real_backend(model, spec, cfg, progress, cancel), self.delay)


class FakeFactory:
    """FakeBackend keyed by the model folder's real fingerprint (so finished cells are recognised);
    a model named in `oom` raises MemoryError while "loading", as a worker that runs out of memory."""

    def __init__(self, oom: tuple[str, ...] = ()) -> None:
        self.oom = oom

    def __call__(self, model, spec, cfg, progress, cancel):
        if model.name in self.oom:
            raise MemoryError("cannot allocate 2.0 GiB for the weights")
        b = FakeBackend(compression=str(spec), fingerprint=model_fingerprint(Path(model.path)), batch_size=3)
        return b


def stub_model(models: Path, name: str) -> Path:
    """A folder `resolve_model` accepts, for the fake backend (never loaded)."""
    d = models / name
    d.mkdir(parents=True, exist_ok=True)
    # the name makes each folder's fingerprint (config.json bytes) its own
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                               "name": name}))
    return d
