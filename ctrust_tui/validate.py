"""Checks on command-line input that must fail before anything is loaded or written (pure Python).

Each check raises `CtrustError` with one actionable line (CLI exit code 2), so a typo never costs
a model load (3-30 s) and never leaves a half-made cache, folder or export behind.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CtrustError

# numpy, CUDA and most RNG APIs take 32-bit unsigned seeds; torch takes more, but a seed that only
# some generators accept would not reproduce everywhere.
SEED_MAX = 2**32 - 1
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
NAME_MAX = 100  # model folder names: far below the 255-byte file-name limit, readable in tables
GGUF_MAGIC = b"GGUF"
_BINARY_PROBE = 1 << 16  # a NUL byte in the first 64 KiB means "not text"


def check_seed(seed: int, option: str = "--seed") -> int:
    if not 0 <= seed <= SEED_MAX:
        raise CtrustError(f"{option} {seed} is out of range; use an integer from 0 to {SEED_MAX}")
    return seed


def check_positive(value: int | None, option: str) -> int | None:
    """`--max-batch`, `--limit`, `--nsamples`: None (unset) or >= 1."""
    if value is not None and value < 1:
        raise CtrustError(f"{option} must be >= 1 (got {value})")
    return value


def check_device(device: str | None) -> str:
    """auto | cpu | cuda | cuda:N | mps, checked by name only (availability is the engine's job)."""
    from .device import validate_device  # the one device home (torch-free at import)

    return validate_device(device)


def check_out_path(path: Path) -> Path:
    """An output file whose folder exists (we never create folders for an export)."""
    if path.is_dir():
        raise CtrustError(f"--out {path} is a folder; give a file path")
    parent = path.expanduser().parent
    if not parent.is_dir():
        raise CtrustError(f"--out {path}: folder {parent} does not exist; create it first")
    return path


def write_out(path: Path, text: str) -> None:
    """Write an export; an OS failure (permission, full disk) is one line, not a traceback."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CtrustError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_name(name: str) -> str:
    if not name.strip():
        raise CtrustError("--name is empty")
    if len(name) > NAME_MAX:
        raise CtrustError(f"--name is {len(name)} characters long; use at most {NAME_MAX}")
    return name


def check_text_file(path: Path, what: str) -> bytes:
    """A readable, non-empty UTF-8 text file (binary files are refused before anything loads)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CtrustError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data[:_BINARY_PROBE]:
        raise CtrustError(f"{what} {path} looks binary (NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CtrustError(f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise CtrustError(f"{what} {path} is empty")
    return data


def check_calibration_file(path: Path) -> None:
    """A user calibration file, fully checked (format, JSONL fields) before the model loads."""
    from .compress.calibration import read_source_text  # pure Python (json + random)

    if path.suffix.lower() not in (".txt", ".jsonl"):
        raise CtrustError(f"calibration file {path}: use a .txt file or a .jsonl file with a 'text' field")
    check_text_file(path, "calibration file")
    read_source_text(str(path))


def check_gguf_file(path: Path) -> None:
    """A file that starts with the GGUF magic, checked before any import work or store change."""
    if path.suffix.lower() != ".gguf":
        raise CtrustError(f"{path}: expected a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise CtrustError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic != GGUF_MAGIC:
        raise CtrustError(f"{path} is not a GGUF file (no GGUF header); nothing was imported")
