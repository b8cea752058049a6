"""The `ray` engine: one Ray actor per cell holds the cell's model; the driver keeps the cache.

Driver (the `ctrust sweep` process)            Ray worker (one actor per cell)
  Runner: plan, cache lookups, commit,    <->    CellWorker: compress (or reuse the variant in the
  judge, score (one Store per cell thread)       shared models dir), load once, render, generate

The actor answers `render_many` (all of a cell's prompts in one call), plans the cell's requests
once (`start`: the same batches as `--engine local`) and returns them batch by batch through
Ray's object store (`next_batch`, one call kept in flight so the worker generates while the
driver commits); the driver commits each batch with `INSERT OR IGNORE` on its content key.
Workers never open the cache. (Plain actor calls rather than a streaming generator: Ray Client,
`ray://`, does not support streaming actor methods.)

Faults: the actor has `max_restarts`; when its worker dies (`kill -9`, a node lost, the OOM
killer) the driver waits for the restarted actor (which reloads the model, reusing the compressed
variant), checks it loads the same weights (fingerprint), and asks again for what it has not
received yet, so no committed batch is generated twice. Errors raised in the worker come back as
`WorkerFailure` (user error / out of memory / bug) and become one line naming the cell.

Ray is an optional extra (`pip install 'ctrust-tui[ray]'`); this module is imported only by
`--engine ray`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..backend import BatchFn, ChunkFn, GenRequest, GenResult, StopFn
from ..compress.spec import CompressionSpec
from ..errors import Cancelled, CtrustError
from ..modelstore import ModelRef
from ..runner import BackendFactory, RunConfig, real_backend
from ..trust.types import Message

INSTALL_HINT = "--engine ray needs Ray: pip install 'ctrust-tui[ray]' (or pip install 'ray>=2.60,<3')"
POLL_S = 0.25  # how often a waiting driver thread looks at the cancel flag
RESTART_TIMEOUT_S = 1800.0  # a restarted worker reloads (and may recompress) the model


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CtrustError(INSTALL_HINT) from None
    return ray


class WorkerFailure(Exception):
    """An error raised in a worker, flattened to text so it always unpickles on the driver.

    kind: "error" (bad input the user can fix), "oom" (out of memory), "internal" (a bug)."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(kind, message, detail)
        self.kind, self.message, self.detail = kind, message, detail

    def __str__(self) -> str:
        return self.message


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or \
        "out of memory" in str(exc).lower()


def _failure(exc: BaseException) -> WorkerFailure:
    host = socket.gethostname()
    if isinstance(exc, WorkerFailure):
        return exc
    if _is_oom(exc):
        return WorkerFailure("oom", f"the worker on {host} ran out of memory ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); lower --max-batch or give each worker more memory")
    if isinstance(exc, CtrustError):
        return WorkerFailure("error", f"on worker {host}: {exc}")
    if isinstance(exc, OSError):
        what = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        return WorkerFailure("error", f"on worker {host}: {what}")
    return WorkerFailure("internal", f"on worker {host}: {type(exc).__name__}: {exc}",
                         "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def check_worker_paths(model_path: Path, models_dir: Path) -> None:
    """Fail early, in words, when this worker cannot see the shared models dir."""
    host = socket.gethostname()
    for what, path in (("models dir", models_dir), ("model folder", model_path)):
        try:
            os.listdir(path)
        except OSError as exc:
            raise CtrustError(
                f"worker {host} cannot read the {what} {path} ({exc.strerror or exc}): every worker needs the "
                "shared models dir at that path (see --worker-models-dir)") from None


class CellWorker:
    """One cell's model on one Ray worker, loaded once for all the cell's dimensions.

    `__init__` never raises (a failed creation task would be a dead actor whose error Ray reports
    as a traceback): the error is kept and raised by `identity()`."""

    def __init__(self, model: ModelRef, spec: CompressionSpec, cfg: RunConfig, factory: BackendFactory) -> None:
        self.backend: Any = None
        self.error: WorkerFailure | None = None
        self.stream: Iterator[list[GenResult]] = iter(())
        try:
            check_worker_paths(model.path, cfg.models_dir)
            self.backend = factory(model, spec, cfg, lambda p: None, lambda: False)
        except BaseException as exc:  # noqa: B036 - reported by identity(), never lost
            self.error = _failure(exc)

    def identity(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        b = self.backend
        return {"model_fingerprint": b.model_fingerprint, "compression": b.compression, "device": b.device,
                "info": dict(b.info), "pid": os.getpid(), "host": socket.gethostname()}

    def render_many(self, messages: Sequence[Sequence[Message]]) -> list[str]:
        try:
            many = getattr(self.backend, "render_many", None)
            return list(many(messages)) if many else [self.backend.render(m) for m in messages]
        except BaseException as exc:  # noqa: B036
            raise _failure(exc) from None

    def start(self, requests: Sequence[GenRequest]) -> None:
        """Plan the requests (the same batches `--engine local` makes for them); `next_batch` generates."""
        try:
            self.stream = iter(self.backend.generate(list(requests)))
        except BaseException as exc:  # noqa: B036
            raise _failure(exc) from None

    def next_batch(self) -> list[GenResult] | None:
        """The next generated batch, or None when the requests given to `start` are done."""
        try:
            return list(next(self.stream))
        except StopIteration:
            self.stream = iter(())
            return None
        except BaseException as exc:  # noqa: B036
            raise _failure(exc) from None


class RayBackend:
    """The driver's `Backend` for one cell: every call goes to the cell's actor."""

    def __init__(self, engine: RayEngine, actor: Any, cancel: Callable[[], bool]) -> None:
        self.engine, self.actor, self.cancel = engine, actor, cancel
        self.deaths = 0
        ident = self._call("identity")
        self.model_fingerprint: str = ident["model_fingerprint"]
        self.compression: str = ident["compression"]
        self.device: str = ident["device"]
        self.worker_pid: int = ident["pid"]
        self.info: dict[str, Any] = {**ident["info"], "engine": "ray", "worker_host": ident["host"],
                                     "worker_pid": ident["pid"]}

    # -- calls with waiting, cancel and restarts -----------------------------------------------
    def _call(self, method: str, *args: Any) -> Any:
        ray = self.engine.ray
        while True:
            ref = getattr(self.actor, method).remote(*args)
            try:
                return self.engine.wait(ref, self.cancel)
            except ray.exceptions.RayActorError as exc:
                self._died(exc)

    def _died(self, exc: BaseException) -> None:
        """The worker died: count it, wait for its restart (which reloads the model), or give up."""
        ray = self.engine.ray
        self.deaths += 1
        reason = _death_reason(ray, exc)
        if self.deaths > self.engine.retries:
            raise CtrustError(f"the worker died {self.deaths} time(s), last: {reason}; "
                              f"gave up after {self.engine.retries} restart(s) (--max-retries)")
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:  # calls fail while the actor restarts; identity() returns once it has reloaded
            try:
                ident = self.engine.wait(self.actor.identity.remote(), self.cancel)
                break
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise CtrustError(f"the worker did not come back within {RESTART_TIMEOUT_S:.0f} s "
                                      f"after it died ({reason})") from None
                time.sleep(POLL_S)
            except ray.exceptions.RayActorError as again:
                raise CtrustError(f"the worker died and could not be restarted ({_death_reason(ray, again)})") \
                    from None
        if hasattr(self, "model_fingerprint") and ident["model_fingerprint"] != self.model_fingerprint:
            raise CtrustError("the restarted worker loaded different weights (fingerprint changed): "
                              "the model folder changed during the sweep")
        self.worker_pid = ident["pid"]
        if hasattr(self, "info"):
            self.info.update(worker_host=ident["host"], worker_pid=ident["pid"], restarts=self.deaths)

    # -- Backend -------------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        return self.render_many([messages])[0]

    def render_many(self, messages: Sequence[Sequence[Message]]) -> list[str]:
        return self._call("render_many", [list(m) for m in messages])

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        ray = self.engine.ray
        pending = {r.key: r for r in requests}
        stop = should_stop or self.cancel
        while pending:
            try:
                self.engine.wait(self.actor.start.remote(list(pending.values())), stop)
                ahead = self.actor.next_batch.remote()
                while True:
                    results = self.engine.wait(ahead, stop)
                    if results is None:
                        break
                    ahead = self.actor.next_batch.remote()  # the worker generates on while the driver commits
                    batch = [r for r in results if r.key in pending]
                    for r in batch:
                        del pending[r.key]
                    if not batch:
                        continue
                    if on_batch is not None:
                        on_batch([r.key for r in batch])
                    if on_chunks is not None:  # whole texts: one chunk per output
                        on_chunks([(r.key, r.text) for r in batch if r.text])
                    yield batch
            except ray.exceptions.RayActorError as exc:
                self._died(exc)  # then ask the restarted worker for what is still pending
                continue
            if pending:
                raise CtrustError(f"the worker returned no output for {len(pending)} request(s)")

    def close(self) -> None:
        try:
            self.engine.ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone
            pass


def _death_reason(ray: Any, exc: BaseException) -> str:
    text = str(exc)
    # Ray's memory monitor says "running low on memory"; a plain SIGKILL's message merely lists the
    # OOM killer among possible causes, so "OOM" alone proves nothing
    if isinstance(exc, getattr(ray.exceptions, "OutOfMemoryError", ())) or "low on memory" in text.lower():
        return "the worker ran out of memory (killed by the memory monitor or the OOM killer)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"{type(exc).__name__}: {first[:200]}"


class RayEngine:
    """Cells on Ray: `--address auto|host:port|ray://host:port`, or a local Ray started on demand."""

    name = "ray"

    def __init__(self, *, address: str | None = None, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float | None = None, retries: int = 2, max_cells: int | None = None,
                 worker_models_dir: Path | None = None,
                 worker_factory: BackendFactory = real_backend, init_kwargs: dict[str, Any] | None = None) -> None:
        self.ray = import_ray()
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.retries = retries
        self.worker_models_dir = worker_models_dir
        self.worker_factory = worker_factory
        self.init_kwargs = init_kwargs or {}
        self.started = False
        self.concurrency = max_cells or 64
        self._gates: dict[tuple[str, str, str], threading.Lock] = {}
        self._gates_lock = threading.Lock()
        self._actor_cls: Any = None

    # -- cluster ---------------------------------------------------------------------------------
    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            if self.address:
                probe_address(self.address)
            kwargs = dict(self.init_kwargs)
            pinned = os.environ.get("CTRUST_DTYPE")
            if pinned and "runtime_env" not in kwargs:  # a precision pinned on the driver holds on every worker
                kwargs["runtime_env"] = {"env_vars": {"CTRUST_DTYPE": pinned}}
            try:
                ray.init(address=self.address or None, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, **kwargs)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                where = self.address or "a local Ray"
                raise CtrustError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0][:300]}") from None
            self.started = True
        if self.gpus_per_worker is None:
            self.gpus_per_worker = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self._actor_cls = ray.remote(CellWorker)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        per = f"{self.gpus_per_worker:g} GPU" if self.gpus_per_worker else f"{self.cpus_per_worker:g} CPU"
        return (f"Ray: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs in the cluster; "
                f"each cell's worker takes {per}")

    # -- waiting ---------------------------------------------------------------------------------
    def wait(self, ref: Any, cancel: Callable[[], bool]) -> Any:
        """`ray.get` that notices cancel, and turns worker errors into one line."""
        ray = self.ray
        while not ray.wait([ref], timeout=POLL_S)[0]:
            if cancel():
                raise Cancelled()
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, WorkerFailure):
                if cause.kind == "internal":  # a bug: the CLI logs the traceback, the worker's one included
                    bug = RuntimeError(cause.message)
                    bug.add_note("worker traceback:\n" + cause.detail)
                    raise bug from None
                raise CtrustError(cause.message) from None
            raise
        except getattr(ray.exceptions, "OutOfMemoryError", ()) as exc:
            raise CtrustError(_death_reason(ray, exc)) from None

    # -- the BackendFactory ----------------------------------------------------------------------
    def _worker_model(self, model: ModelRef, cfg: RunConfig) -> tuple[ModelRef, RunConfig]:
        """Paths as the workers see them (`--worker-models-dir`, default: the driver's models dir)."""
        if self.worker_models_dir is None:
            return replace(model, path=model.path.resolve()), replace(cfg, models_dir=cfg.models_dir.resolve())
        worker_dir = self.worker_models_dir
        path = model.path.resolve()
        try:
            path = worker_dir / path.relative_to(cfg.models_dir.resolve())
        except ValueError:  # a model outside the models dir is passed as is
            pass
        return replace(model, path=path), replace(cfg, models_dir=worker_dir)

    def factory(self, model: ModelRef, spec: CompressionSpec, cfg: RunConfig,
                progress: Callable[[Any], None], cancel: Callable[[], bool]) -> RayBackend:
        wmodel, wcfg = self._worker_model(model, cfg)
        options: dict[str, Any] = {"max_restarts": self.retries, "max_task_retries": 0, "max_concurrency": 1}
        options["num_cpus"] = self.cpus_per_worker
        if self.gpus_per_worker:
            options["num_gpus"] = self.gpus_per_worker
        # one compression per (model, spec, calibration): the first cell's worker compresses while
        # the others of that key wait here, then reuse the variant by fingerprint
        gate = None
        if spec.kind in ("quant", "prune"):
            key = (str(wmodel.path), str(spec), cfg.calibration.tag if spec.calibrated else "")
            with self._gates_lock:
                gate = self._gates.setdefault(key, threading.Lock())
        if gate is not None:
            while not gate.acquire(timeout=POLL_S):
                if cancel():
                    raise Cancelled()
        try:
            actor = self._actor_cls.options(**options).remote(wmodel, spec, wcfg, self.worker_factory)
            try:
                return RayBackend(self, actor, cancel)
            except BaseException:
                self.ray.kill(actor, no_restart=True)
                raise
        finally:
            if gate is not None:
                gate.release()


def probe_address(address: str, timeout: float = 5.0) -> None:
    """`auto` is Ray's to find; a host:port (or ray://host:port) must accept a connection, or one line."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise CtrustError(f"--address {address!r}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise CtrustError(f"cannot reach Ray at {address} ({exc.strerror or exc}); start the cluster "
                          "(`ray start --head`) or check --address") from None
