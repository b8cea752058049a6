"""Pure value types shared by the compression engine, runner, CLI and TUI (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

CALIBRATION_SOURCES = ("c4", "wikitext2")
CALIBRATION_PRECISIONS = ("auto", "fp32", "bf16")
CALIBRATION_PRECISION_HELP = (
    "Precision of the GPTQ/SparseGPT/Wanda calibration forwards: auto = bf16 where a short benchmark of the "
    "model's matmuls finds it faster than fp32 on this CPU (measured once, cached; the same rule as --dtype "
    "auto) and the model's bf16/fp16 on GPU; fp32 = float32 throughout; bf16 = bf16 autocast even where slower")
MIN_SEQLEN = 16  # shorter windows give attention almost no context to calibrate on


@dataclass(frozen=True)
class CalibrationConfig:
    """Calibration data for GPTQ/AWQ/SparseGPT/Wanda.

    Paper defaults are 128 samples x 2048 tokens; the CPU-friendly defaults here (32 x 512,
    C4) keep a 135M model's compression to about a minute on 2 cores. `source` is `c4`,
    `wikitext2`, or a path to a .txt / .jsonl file (jsonl: a "text" field per line).

    `precision` is the matrix-product precision of the calibration forward passes of GPTQ,
    SparseGPT and Wanda (`compress/precision.py`): `auto` runs them in bfloat16 where bf16 is
    measured faster than float32 on this CPU (`engine.dtype`; as the references run them in fp16
    on a GPU; on a GPU the model is loaded in bf16/fp16 anyway), `fp32` keeps every product in float32, `bf16` forces
    bfloat16. Statistics, Hessians and weight updates are always float32; AWQ's search always
    runs in the model's dtype.
    """

    source: str = "c4"
    nsamples: int = 32
    seqlen: int = 512
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        """The one validation of calibration settings (CLI, Setup screen and compress_model all
        build one). Whether a custom file exists is checked when it is read."""
        from ..errors import CtrustError

        if not isinstance(self.source, str) or not self.source.strip():
            raise CtrustError(f"calibration source: choose {', '.join(CALIBRATION_SOURCES)} or a .txt/.jsonl file")
        if not isinstance(self.nsamples, int) or self.nsamples < 1:
            raise CtrustError(f"calibration nsamples must be an integer >= 1 (paper: 128), got {self.nsamples!r}")
        if not isinstance(self.seqlen, int) or self.seqlen < MIN_SEQLEN:
            raise CtrustError(f"calibration seqlen must be an integer >= {MIN_SEQLEN} tokens (paper: 2048), "
                              f"got {self.seqlen!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise CtrustError(f"calibration seed must be an integer >= 0, got {self.seed!r}")
        if self.precision not in CALIBRATION_PRECISIONS:
            raise CtrustError(f"calibration precision {self.precision!r}: choose one of "
                              f"{', '.join(CALIBRATION_PRECISIONS)}")

    @property
    def tag(self) -> str:
        src = self.source if self.source in CALIBRATION_SOURCES else "custom"
        extra = "" if self.precision == "auto" else f"-{self.precision}"
        return f"{src}-n{self.nsamples}-l{self.seqlen}-s{self.seed}{extra}"

    def to_dict(self) -> dict:
        return {"source": self.source, "nsamples": self.nsamples, "seqlen": self.seqlen, "seed": self.seed,
                "precision": self.precision}


PAPER_CALIBRATION = CalibrationConfig(source="c4", nsamples=128, seqlen=2048, seed=0)


@dataclass(frozen=True)
class CompressProgress:
    """Progress of one compression: layer i of n (1-based) and the current sub-step."""

    spec: str
    layer: int
    n_layers: int
    step: str  # e.g. "calibrate", "capture", "quantize q_proj", "prune", "perplexity", "save"
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.n_layers <= 0 else min(1.0, self.layer / self.n_layers)


ProgressFn = Callable[[CompressProgress], None]
CancelFn = Callable[[], bool]
