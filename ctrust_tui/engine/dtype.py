"""Which floating-point precision a model runs in: measured on this machine, never guessed.

bf16 is not a free win on CPUs. Measured on two of the 2-core machines ctrust is developed on:
one (AMD EPYC, no AVX512-BF16) ran a bf16 `linear` of SmolLM2-135M's shapes at 5 GFLOP/s against
25 in fp32 under the same load, another (avx512_bf16, no AMX) at 161 against 290 GFLOP/s, and a
third (AMX) about 2x faster in bf16. cpuinfo flags do not predict which. So on a CPU `auto`
times the model's own matmul shapes in fp32 and bf16 (about a second, once) and keeps the faster;
the verdict is cached per machine and shape in a small JSON file. On CUDA `auto` is bf16 (fp16
where the GPU lacks bf16), on MPS fp16.

The chosen dtype is part of every generation's cache key (store.db.generation_key), so outputs of
different precisions are never mixed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..device import DTYPE_CHOICES
from ..errors import CtrustError

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# bf16 must beat fp32 by this factor to be chosen: timing noise on a shared machine is about 5%,
# and a lower precision costs agreement with fp32 (docs/performance.md), so a tie keeps fp32.
MIN_SPEEDUP = 1.10
# rows of the probe's matmuls: a prefill chunk (compute-bound, as prompt prefill is on CPU)
PROBE_TOKENS = 256
PROBE_SECONDS = 0.25  # per dtype and shape, after one warm-up call


def short_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}.get(dtype, str(dtype).replace("torch.", ""))


@dataclass(frozen=True)
class Probe:
    """One measurement: GFLOP/s per dtype for one model shape on one machine, and the choice."""

    machine: str
    shape: str
    gflops: dict[str, float]
    chosen: str
    measured_at: str

    def describe(self) -> str:
        rates = ", ".join(f"{k} {v:.0f}" for k, v in self.gflops.items())
        return f"{self.chosen} (measured: {rates} GFLOP/s on {self.shape})"


def machine_id() -> str:
    """What decides matmul speed: CPU model, cores torch uses, torch build."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{cpu} | {platform.machine()} | {torch.get_num_threads()} threads | torch {torch.__version__}"


def model_shapes(config: Any) -> tuple[tuple[int, int], ...]:
    """(in, out) of the decoder's linear layers: attention projections and the MLP."""
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 512)
    inter = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    return ((hidden, hidden), (hidden, inter), (inter, hidden))


def probe_cache_path() -> Path:
    base = os.environ.get("CTRUST_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("CTRUST_CACHE_DIR") else root / "ctrust") / "dtype-probe.json"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again (the file is only a cache)


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measure again next time


def _gflops(shapes: tuple[tuple[int, int], ...], dtype: torch.dtype, seconds: float) -> float:
    gen = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(PROBE_TOKENS, i, generator=gen).to(dtype), torch.randn(o, i, generator=gen).to(dtype))
             for i, o in shapes]
    flops_per_round = sum(2 * PROBE_TOKENS * i * o for i, o in shapes)
    with torch.inference_mode():
        for x, w in pairs:  # warm-up: first calls pick kernels and allocate
            torch.nn.functional.linear(x, w)
        rounds, started = 0, time.perf_counter()
        while True:
            for x, w in pairs:
                torch.nn.functional.linear(x, w)
            rounds += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and rounds >= 2:
                break
    return flops_per_round * rounds / elapsed / 1e9


def measure(shapes: tuple[tuple[int, int], ...], *, seconds: float = PROBE_SECONDS) -> dict[str, float]:
    """GFLOP/s of fp32 and bf16 linear layers of these shapes on this CPU, interleaved (fp32, bf16,
    fp32, bf16) so a load change during the probe hits both alike; the better of two rounds counts."""
    best = {"fp32": 0.0, "bf16": 0.0}
    for _ in range(2):
        for name in best:
            best[name] = max(best[name], _gflops(shapes, DTYPES[name], seconds / 2))
    return best


def cpu_probe(config: Any, *, cache: Path | None = None, remeasure: bool = False) -> Probe:
    """The faster of fp32 and bf16 for this model's shapes on this CPU (cached per machine and shape)."""
    shapes = model_shapes(config)
    shape = " ".join(f"{i}x{o}" for i, o in shapes)
    machine = machine_id()
    path = cache or probe_cache_path()
    data = _read_cache(path)
    key = f"{machine} || {shape}"
    hit = data.get(key)
    if not remeasure and isinstance(hit, dict):
        try:
            return Probe(**hit)
        except TypeError:
            pass
    rates = measure(shapes)
    chosen = "bf16" if rates["bf16"] >= MIN_SPEEDUP * rates["fp32"] else "fp32"
    probe = Probe(machine, shape, {k: round(v, 1) for k, v in rates.items()}, chosen,
                  time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    data[key] = asdict(probe)
    _write_cache(path, data)
    return probe


def bf16_is_faster(config: Any) -> bool:
    """Whether bf16 wins on this CPU for these shapes (compression's `--calib-precision auto`);
    a pinned `CTRUST_DTYPE` answers without measuring."""
    pinned = os.environ.get("CTRUST_DTYPE", "auto").lower()
    if pinned in ("fp32", "bf16"):
        return pinned == "bf16"
    return cpu_probe(config).chosen == "bf16"


def supported(device: torch.device) -> tuple[str, ...]:
    """The explicit dtypes this device runs (a tiny matmul in each, so what torch can actually do)."""
    out = []
    for name, dt in DTYPES.items():
        if device.type == "cuda" and dt is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            continue
        try:
            a = torch.ones(2, 2, dtype=dt, device=device)
            _ = (a @ a).sum().item()
        except (RuntimeError, TypeError):
            continue
        out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class DtypeChoice:
    dtype: torch.dtype
    requested: str
    reason: str  # shown in the run's environment

    @property
    def name(self) -> str:
        return short_name(self.dtype)


def check_supported(requested: str, device: torch.device) -> None:
    """An explicit `--dtype` this device cannot run: one clear line before anything loads."""
    if requested not in DTYPE_CHOICES:
        raise CtrustError(f"--dtype {requested!r}: choose one of {', '.join(DTYPE_CHOICES)}")
    if requested != "auto":
        ok = supported(device)
        if requested not in ok:
            raise CtrustError(f"--dtype {requested}: {device} cannot run it here; supported: {', '.join(ok)}")


def effective_request(requested: str | None) -> str:
    """The request after `CTRUST_DTYPE`, which replaces `auto` (and only auto)."""
    requested = (requested or "auto").lower()
    pinned = os.environ.get("CTRUST_DTYPE", "auto").lower()
    return pinned if requested == "auto" and pinned != "auto" else requested


def resolve_dtype(requested: str, device: torch.device, config: Any = None) -> DtypeChoice:
    """`--dtype` for `device`: auto = bf16/fp16 on accelerators, the measured faster on CPU.
    `CTRUST_DTYPE` (fp32 | bf16 | fp16) replaces auto everywhere, e.g. to pin a machine's precision."""
    requested = effective_request(requested)
    check_supported(requested, device)
    if requested != "auto":
        return DtypeChoice(DTYPES[requested], requested, f"{requested} (requested)")
    if device.type == "cuda":
        name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return DtypeChoice(DTYPES[name], "auto", f"{name} (auto on CUDA)")
    if device.type == "mps":
        return DtypeChoice(torch.float16, "auto", "fp16 (auto on MPS)")
    probe = cpu_probe(config)
    return DtypeChoice(DTYPES[probe.chosen], "auto", f"auto: {probe.describe()}")
