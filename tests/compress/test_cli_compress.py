"""`ctrust compress` and `ctrust run --compression` with their default `--device auto` on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_api import make_base

from ctrust_tui.cli import main
from ctrust_tui.store.db import open_store


def test_compress_and_run_with_default_device(tmp_path: Path) -> None:
    base = make_base(tmp_path / "src")
    models = tmp_path / "models"
    models.mkdir()
    res = CliRunner().invoke(main, ["--models-dir", str(models), "compress", str(base), "rtn-4b-g32"])
    assert res.exit_code == 0, res.output
    out = Path(res.output.strip().splitlines()[-1])
    assert out.is_dir() and json.loads((out / "compression.json").read_text())["spec"] == "rtn-4b-g32"

    db = tmp_path / "cache.db"
    res = CliRunner().invoke(main, ["--models-dir", str(models), "--db", str(db), "run", "--model", str(base),
                                    "--compression", "rtn-4b-g32", "--dimensions", "ethics", "--limit", "1"])
    assert res.exit_code == 0, res.output
    runs = json.loads(CliRunner().invoke(main, ["--db", str(db), "runs", "--json"]).output)
    assert runs[0]["compression"] == "rtn-4b-g32" and runs[0]["scores"]["ethics"]["n"] == 1


def test_generations_of_a_compressed_variant_are_keyed_by_its_own_weights(tmp_path: Path) -> None:
    """A variant recompressed under the same spec (new ctrust, other calibration precision) must not
    reuse the cached outputs of the old one: the backend's fingerprint is the variant folder's."""
    from ctrust_tui.compress.fingerprint import model_fingerprint
    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.modelstore import ModelRef
    from ctrust_tui.runner import RunConfig, real_backend

    base = make_base(tmp_path / "src")
    models = tmp_path / "models"
    cfg = RunConfig(model=str(base), compressions=(), dimensions=("ethics",), device="cpu", models_dir=models)
    ref = ModelRef("tiny", base, "path")
    dense = real_backend(ref, parse_spec("none"), cfg, lambda e: None, lambda: False)
    rtn = real_backend(ref, parse_spec("rtn-4b-g32"), cfg, lambda e: None, lambda: False)
    variant = Path(rtn.info["compressed_path"])
    assert dense.model_fingerprint == model_fingerprint(base) == rtn.info["base_fingerprint"]
    assert rtn.model_fingerprint == model_fingerprint(variant) != dense.model_fingerprint
    dense.close()
    rtn.close()


def test_run_with_the_continuous_scheduler_matches_the_static_one(tmp_path: Path) -> None:
    """`--scheduler continuous` on a CPU: the same greedy outputs (same keys: they hit one cache), the
    scheduler recorded in the run's environment, and an unknown scheduler refused before any load."""
    base = make_base(tmp_path / "src")
    args = ["--models-dir", str(tmp_path / "models"), "run", "--model", str(base), "--dimensions",
            "ethics,advglue", "--limit", "3"]
    outputs = {}
    for sched in ("static", "continuous"):
        db = tmp_path / f"{sched}.db"
        res = CliRunner().invoke(main, ["--db", str(db), *args, "--scheduler", sched])
        assert res.exit_code == 0, res.output
        assert ("continuous batching" in res.output) == (sched == "continuous")
        runs = json.loads(CliRunner().invoke(main, ["--db", str(db), "runs", "--json"]).output)
        assert runs[0]["env"]["scheduler"] == sched and runs[0]["env"]["dtype"] == "float32"
        with open_store(db, readonly=True) as store:
            outputs[sched] = dict(store.conn.execute("SELECT key, output FROM generations").fetchall())
    assert outputs["static"] and outputs["static"] == outputs["continuous"]
    res = CliRunner().invoke(main, ["--db", str(tmp_path / "x.db"), *args, "--scheduler", "fast"])
    assert res.exit_code == 2 and "fast" in res.output and not (tmp_path / "x.db").exists()
