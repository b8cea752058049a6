"""A sweep's grid: models x compression specs x seeds, each cell run on the same dimensions and profile.

A cell is one (model, spec, seed): one `Runner` run, one row in `ctrust runs`. The grid comes from
command-line flags or a TOML/YAML file with the same field names (dashes or underscores), for
example::

    models = ["smollm2-135m-instruct"]
    compression = ["none", "gptq-4b-g128", "awq-3b-g128", "wanda-2:4"]
    dimensions = "all"
    profile = "quick"
    seeds = [0, 1]

Every value is checked here, before a model loads or a worker starts: an unknown spec, dimension,
profile or key is one line (exit 2). Seeds vary decoding only; every calibrated spec is compressed
once per (model, spec, calibration), with the calibration seed `calib_seed` (default 0, as a
`ctrust run --seed 0`), so seeds 0 and 1 of a GPTQ cell share one compressed variant.
Pure Python (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..compress.spec import CompressionSpec, parse_specs
from ..compress.types import CALIBRATION_PRECISIONS, CALIBRATION_SOURCES, CalibrationConfig
from ..device import DTYPE_CHOICES
from ..errors import CtrustError
from ..runner import RunConfig
from ..trust import get_profile, parse_dimensions
from ..trust.prompt_format import MODEL, parse_prompt_format
from ..trust.rules import DEFAULT_RULES, parse_rules
from ..validate import check_device, check_positive, check_seed

# file keys (dashes read as underscores) -> what they hold; the CLI flags have the same names
KEYS = {
    "models": "model names or paths (list or comma string)",
    "compression": "compression specs (list or comma string)",
    "dimensions": "dimension ids or 'all'",
    "profile": "smoke | quick | paper",
    "seeds": "decoding seeds (list or comma string)",
    "limit": "at most N prompts per dimension",
    "max_batch": "generation batch cap",
    "device": "auto | cpu | cuda | mps",
    "dtype": "auto | fp32 | bf16 | fp16 (auto: measured on each worker)",
    "rules": "paper | robust (the rule set shown; both are stored)",
    "prompt_format": "model | fork | fork:TEMPLATE",
    "toxicity_scorer": "profanity | perspective | PATH",
    "calibration": "c4 | wikitext2 | PATH",
    "nsamples": "calibration samples",
    "seqlen": "tokens per calibration sample",
    "calib_seed": "calibration seed",
    "calib_precision": "auto | fp32 | bf16",
}


@dataclass(frozen=True)
class Cell:
    """One (model, spec, seed) of the grid: one run."""

    model: str
    spec: CompressionSpec
    seed: int

    @property
    def label(self) -> str:
        return f"{self.model} / {self.spec} / seed {self.seed}"


@dataclass(frozen=True)
class Grid:
    models: tuple[str, ...]
    compressions: tuple[CompressionSpec, ...]
    dimensions: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    profile: str = "smoke"
    limit: int | None = None
    max_batch: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    rules: str = DEFAULT_RULES
    prompt_format: str = MODEL
    toxicity_scorer: str | None = None
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    def cells(self) -> list[Cell]:
        """Model-major, then spec, then seed: the order `ctrust runs` lists them in."""
        return [Cell(m, s, seed) for m in self.models for s in self.compressions for seed in self.seeds]

    def run_config(self, cell: Cell, *, db_path: Path, models_dir: Path) -> RunConfig:
        return RunConfig(model=cell.model, compressions=(cell.spec,), dimensions=self.dimensions,
                         profile=self.profile, seed=cell.seed, device=self.device, calibration=self.calibration,
                         toxicity_scorer=self.toxicity_scorer, db_path=db_path, models_dir=models_dir,
                         max_batch=self.max_batch, limit=self.limit, rules=self.rules,
                         prompt_format=self.prompt_format, dtype=self.dtype)


def _words(value: Any, key: str) -> list[str]:
    """A list, or a comma string, of names."""
    if isinstance(value, str):
        return [w.strip() for w in value.split(",") if w.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise CtrustError(f"grid: {key} must be a list or a comma-separated string (got {type(value).__name__})")


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise CtrustError(f"grid: {key} must be an integer (got {value!r})")
    try:
        return int(value)
    except ValueError:
        raise CtrustError(f"grid: {key} must be an integer (got {value!r})") from None


def _opt_int(value: Any, key: str) -> int | None:
    return None if value is None else check_positive(_int(value, key), f"grid: {key}")


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise CtrustError(f"grid: {key} must be a string (got {type(value).__name__})")
    return value


def build_grid(values: Mapping[str, Any]) -> Grid:
    """A checked Grid from file and flag values (keys as in `KEYS`; missing keys take the defaults)."""
    raw = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise CtrustError(f"grid: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    models = tuple(dict.fromkeys(_words(raw.get("models", "smollm2-135m-instruct"), "models")))
    if not models:
        raise CtrustError("grid: no models given")
    specs = parse_specs(",".join(_words(raw.get("compression", "none"), "compression")))
    dims = parse_dimensions(",".join(_words(raw.get("dimensions", "all"), "dimensions")))
    seeds = tuple(dict.fromkeys(check_seed(_int(s, "seeds"), "grid: seed")
                                for s in _words(raw.get("seeds", "0"), "seeds")))
    if not seeds:
        raise CtrustError("grid: no seeds given")
    profile = _str(raw.get("profile", "smoke"), "profile")
    get_profile(profile)
    calib_source = _str(raw.get("calibration", "c4"), "calibration")
    if calib_source not in CALIBRATION_SOURCES and not Path(calib_source).is_file():
        raise CtrustError(f"grid: calibration {calib_source!r}: choose {', '.join(CALIBRATION_SOURCES)} or a "
                          ".txt/.jsonl file")
    if calib_source not in CALIBRATION_SOURCES:
        from ..validate import check_calibration_file

        check_calibration_file(Path(calib_source))
    precision = _str(raw.get("calib_precision", "auto"), "calib_precision")
    if precision not in CALIBRATION_PRECISIONS:
        raise CtrustError(f"grid: calib_precision {precision!r}: choose {', '.join(CALIBRATION_PRECISIONS)}")
    nsamples, seqlen = _int(raw.get("nsamples", 32), "nsamples"), _int(raw.get("seqlen", 512), "seqlen")
    if nsamples < 1 or seqlen < 16:
        raise CtrustError("grid: nsamples must be >= 1 and seqlen >= 16")
    calibration = CalibrationConfig(calib_source, nsamples, seqlen,
                                    check_seed(_int(raw.get("calib_seed", 0), "calib_seed"), "grid: calib_seed"),
                                    precision)
    scorer = raw.get("toxicity_scorer")
    return Grid(
        models=models, compressions=specs, dimensions=dims, seeds=seeds, profile=profile,
        limit=_opt_int(raw.get("limit"), "limit"), max_batch=_opt_int(raw.get("max_batch"), "max_batch"),
        device=check_device(_str(raw.get("device", "auto"), "device")),
        dtype=_dtype(_str(raw.get("dtype", "auto"), "dtype")),
        rules=parse_rules(_str(raw.get("rules", DEFAULT_RULES), "rules")),
        prompt_format=parse_prompt_format(_str(raw.get("prompt_format", MODEL), "prompt_format")),
        toxicity_scorer=None if scorer is None else _str(scorer, "toxicity_scorer"),
        calibration=calibration,
    )


def _dtype(value: str) -> str:
    if value not in DTYPE_CHOICES:
        raise CtrustError(f"grid: dtype {value!r}: choose {', '.join(DTYPE_CHOICES)}")
    return value


def read_grid_file(path: Path) -> dict[str, Any]:
    """The mapping in a .toml, .yaml or .yml grid file (YAML needs PyYAML, which transformers installs)."""
    from ..validate import check_text_file

    text = check_text_file(path, "grid file").decode("utf-8")  # readable, text, UTF-8, not empty
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            loaded: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CtrustError(f"grid file {path}: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - transformers depends on PyYAML
            raise CtrustError(f"grid file {path}: reading YAML needs PyYAML (pip install pyyaml); "
                              "or write the grid as .toml") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CtrustError(f"grid file {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    else:
        raise CtrustError(f"grid file {path}: use a .toml, .yaml or .yml file")
    if not isinstance(loaded, dict):
        raise CtrustError(f"grid file {path}: expected a table of keys ({', '.join(KEYS)})")
    return loaded

