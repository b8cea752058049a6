"""Compression specs: one frozen dataclass, one registry of methods, one compact string form.

The string form is used everywhere (CLI, store, folder names, TUI): `none`, `gptq-4b-g128`,
`gptq-3b-g128-noact-asym`, `awq-4b-g128`, `rtn-4b-pc`, `sparsegpt-0.5`, `wanda-2:4`,
`magnitude-4:8`, `bnb-nf4`. `parse_spec(str(spec)) == spec` always holds. Pure Python: the CLI
and the TUI validate specs without importing torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping

from ..errors import InvalidSpec

# How a method changes a model (compress/api.py runs the pipeline, compress/methods.py the method):
#   dense       nothing to do
#   load_time   quantized by the loader (bitsandbytes); nothing is written
#   weight_only one pass over the Linears, no calibration (RTN, magnitude)
#   sequential  layer by layer on calibration activations (GPTQ, SparseGPT, Wanda)
#   awq         its own search over scales and clips per layer (AWQ)
PIPELINES = ("dense", "load_time", "weight_only", "sequential", "awq")


@dataclass(frozen=True)
class MethodInfo:
    """One row of the compression-method registry: spec name -> what it is and how it runs."""

    name: str
    kind: str  # "none" | "quant" | "prune" | "bnb"
    title: str
    description: str
    bits: tuple[int, ...] = ()
    calibrated: bool = False
    reference: str = ""
    pipeline: str = "dense"  # dense | load_time | weight_only | sequential | awq
    default_sym: bool = True  # the reference's default: AutoGPTQ sym=True, llm-awq zero_point=True

    @property
    def writes_folder(self) -> bool:
        """True when compressing writes a variant folder under models/ (not for none and bnb)."""
        return self.pipeline in ("weight_only", "sequential", "awq")


METHODS: Mapping[str, MethodInfo] = MappingProxyType(
    {
        "none": MethodInfo("none", "none", "Dense", "the uncompressed model"),
        "gptq": MethodInfo(
            "gptq", "quant", "GPTQ", "second-order weight quantization, layer by layer",
            (2, 3, 4, 8), True, "IST-DASLab/gptq", "sequential",
        ),
        "awq": MethodInfo(
            "awq", "quant", "AWQ", "activation-aware scaling + clipping, fake-quantized weights",
            (3, 4, 8), True, "mit-han-lab/llm-awq", "awq", default_sym=False,
        ),
        "rtn": MethodInfo(
            "rtn", "quant", "RTN", "round-to-nearest baseline (no calibration)", (2, 3, 4, 8), False,
            pipeline="weight_only",
        ),
        "sparsegpt": MethodInfo(
            "sparsegpt", "prune", "SparseGPT", "second-order pruning with weight reconstruction",
            (), True, "IST-DASLab/sparsegpt", "sequential",
        ),
        "wanda": MethodInfo(
            "wanda", "prune", "Wanda", "prune by |W| x input-activation norm, per output row",
            (), True, "locuslab/wanda", "sequential",
        ),
        "magnitude": MethodInfo("magnitude", "prune", "Magnitude", "prune smallest |W| (no calibration)",
                                pipeline="weight_only"),
        "bnb": MethodInfo(
            "bnb", "bnb", "bitsandbytes", "load-time int8 / nf4 / fp4 with real kernels (CPU too)",
            pipeline="load_time",
        ),
    }
)

BNB_VARIANTS = ("int8", "nf4", "fp4")
NM_PATTERNS = ((1, 2), (2, 4), (4, 8))
DEFAULT_GROUP = 128


@dataclass(frozen=True)
class CompressionSpec:
    """What to do to the weights. Fields that do not apply to `method` stay at their defaults."""

    method: str = "none"
    bits: int | None = None
    group_size: int = DEFAULT_GROUP  # -1 = per output channel
    act_order: bool = True  # GPTQ only (the paper used desc_act)
    static_groups: bool = False  # GPTQ only: group ranges fixed up front on consecutive columns (AutoGPTQ)
    sym: bool | None = None  # None = the method's default (MethodInfo.default_sym); always a bool after init
    sparsity: float | None = None  # unstructured ratio in (0, 1)
    n: int | None = None  # N:M structured sparsity
    m: int | None = None
    variant: str | None = None  # bnb: int8 | nf4 | fp4

    def __post_init__(self) -> None:
        if self.sym is None:
            info = METHODS.get(self.method)
            object.__setattr__(self, "sym", info.default_sym if info else True)

    @property
    def info(self) -> MethodInfo:
        return METHODS[self.method]

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def is_dense(self) -> bool:
        return self.method == "none"

    @property
    def calibrated(self) -> bool:
        return self.info.calibrated

    @property
    def target_sparsity(self) -> float | None:
        if self.n is not None and self.m is not None:
            return 1 - self.n / self.m
        return self.sparsity

    def __str__(self) -> str:
        m = self.method
        if m == "none":
            return "none"
        if m == "bnb":
            return f"bnb-{self.variant}"
        if self.kind == "quant":
            parts = [m, f"{self.bits}b", "pc" if self.group_size == -1 else f"g{self.group_size}"]
            if m == "gptq" and not self.act_order:
                parts.append("noact")
            if m == "gptq" and self.static_groups:
                parts.append("static")
            if self.sym != self.info.default_sym:
                parts.append("sym" if self.sym else "asym")
            return "-".join(parts)
        if self.n is not None:
            return f"{m}-{self.n}:{self.m}"
        return f"{m}-{_fmt_ratio(self.sparsity)}"

    def describe(self) -> str:
        """A human label for tables and the TUI."""
        info = self.info
        if self.method == "none":
            return "Dense (no compression)"
        if self.method == "bnb":
            return f"bitsandbytes {self.variant}"
        if self.kind == "quant":
            g = "per-channel" if self.group_size == -1 else f"group {self.group_size}"
            return f"{info.title} {self.bits}-bit, {g}"
        if self.n is not None:
            return f"{info.title} {self.n}:{self.m}"
        return f"{info.title} {self.sparsity:.0%} unstructured"


def _fmt_ratio(x: float | None) -> str:
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return s


def _choices() -> str:
    return "none, gptq-4b-g128, awq-4b-g128, rtn-4b-g128, sparsegpt-0.5, wanda-2:4, magnitude-4:8, bnb-int8|nf4|fp4"


def validate(spec: CompressionSpec) -> CompressionSpec:
    """Raise InvalidSpec naming the valid choices if any field is out of range."""
    if spec.method not in METHODS:
        raise InvalidSpec(f"unknown compression method {spec.method!r}; methods: {', '.join(METHODS)}")
    info = spec.info
    if info.kind == "quant":
        if spec.bits not in info.bits:
            raise InvalidSpec(
                f"{spec.method}: unsupported bits {spec.bits}; choose one of {', '.join(map(str, info.bits))}"
            )
        if spec.static_groups and (spec.method != "gptq" or spec.group_size == -1):
            raise InvalidSpec(f"{spec.method}: -static (static groups) applies to GPTQ with groups, e.g. "
                              "gptq-4b-g128-static")
        if spec.group_size != -1 and (spec.group_size < 8 or spec.group_size & (spec.group_size - 1)):
            raise InvalidSpec(
                f"{spec.method}: group size must be a power of two >= 8, or -1 for per-channel (got {spec.group_size})"
            )
    elif info.kind == "prune":
        if spec.n is not None or spec.m is not None:
            if spec.n is None or spec.m is None or not (0 < spec.n < spec.m):
                raise InvalidSpec(f"{spec.method}: N:M needs 0 < N < M (got {spec.n}:{spec.m}); e.g. 2:4, 4:8, 1:2")
        elif spec.sparsity is None or not (0.0 < spec.sparsity < 1.0):
            raise InvalidSpec(f"{spec.method}: sparsity must be in (0, 1), e.g. 0.5 (got {spec.sparsity})")
    elif info.kind == "bnb":
        if spec.variant not in BNB_VARIANTS:
            raise InvalidSpec(f"bnb variant must be one of {', '.join(BNB_VARIANTS)} (got {spec.variant!r})")
    return spec


_RATIO = re.compile(r"^(0?\.\d+|\d{1,2}%)$")
_NM = re.compile(r"^(\d+):(\d+)$")


def parse_spec(text: str) -> CompressionSpec:
    """Parse a spec string (case-insensitive); raise InvalidSpec with the valid forms otherwise."""
    raw = text.strip().lower().replace("_", "-")
    raw = raw.replace("-g-1", "-pc")
    if raw in ("", "none", "dense"):
        return CompressionSpec()
    parts = raw.split("-")
    method, rest = parts[0], parts[1:]
    if method not in METHODS:
        raise InvalidSpec(f"unknown compression {text!r}; examples: {_choices()}")
    info = METHODS[method]
    try:
        if info.kind == "bnb":
            if len(rest) != 1:
                raise ValueError
            return validate(CompressionSpec(method="bnb", variant=rest[0]))
        if info.kind == "quant":
            spec = CompressionSpec(method=method)
            for tok in rest:
                if re.fullmatch(r"\d+b(it)?", tok):
                    spec = replace(spec, bits=int(re.match(r"\d+", tok).group()))
                elif re.fullmatch(r"g\d+", tok):
                    spec = replace(spec, group_size=int(tok[1:]))
                elif tok in ("pc", "perchannel"):
                    spec = replace(spec, group_size=-1)
                elif tok == "noact" and method == "gptq":
                    spec = replace(spec, act_order=False)
                elif tok == "act" and method == "gptq":
                    spec = replace(spec, act_order=True)
                elif tok == "static" and method == "gptq":
                    spec = replace(spec, static_groups=True)
                elif tok == "asym":
                    spec = replace(spec, sym=False)
                elif tok == "sym":
                    spec = replace(spec, sym=True)
                else:
                    raise ValueError(tok)
            if spec.bits is None:
                raise InvalidSpec(f"{text!r}: give the bits, e.g. {method}-4b-g128")
            return validate(spec)
        if info.kind == "prune":
            if len(rest) != 1:
                raise ValueError
            tok = rest[0]
            nm = _NM.match(tok)
            if nm:
                return validate(CompressionSpec(method=method, n=int(nm.group(1)), m=int(nm.group(2))))
            if tok.endswith("%"):
                return validate(CompressionSpec(method=method, sparsity=float(tok[:-1]) / 100))
            return validate(CompressionSpec(method=method, sparsity=float(tok)))
    except InvalidSpec:
        raise
    except ValueError:
        pass
    raise InvalidSpec(f"cannot parse compression {text!r}; examples: {_choices()}")


def parse_specs(text: str) -> tuple[CompressionSpec, ...]:
    """Comma-separated specs, duplicates removed, order kept."""
    seen: dict[str, CompressionSpec] = {}
    for part in text.split(","):
        if part.strip():
            s = parse_spec(part)
            seen.setdefault(str(s), s)
    if not seen:
        raise InvalidSpec(f"no compression given; examples: {_choices()}")
    return tuple(seen.values())
