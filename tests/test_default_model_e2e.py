"""End-to-end on the real default model (SmolLM2-135M): the thin slice, cache reuse, bnb, all nine dimensions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "smollm2-135m-instruct"

# In CI (`make test` imports the model first) a missing model is a failure, never a silent skip.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MODEL / "config.json").is_file() and not os.environ.get("CI"),
                       reason="default model not imported (make setup)"),
]


def ctrust(*args: str, db: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "CTRUST_DB": str(db), "CTRUST_MODELS": str(REPO / "models"), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "ctrust_tui.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)


def test_thin_slice_runs_and_second_run_is_served_from_cache(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    args = ("run", "--model", "smollm2-135m-instruct", "--compression", "none", "--dimensions",
            "stereotype,ethics", "--profile", "smoke", "--limit", "3")
    first = ctrust(*args, db=db)
    assert first.returncode == 0, first.stderr
    assert "starting run #1" in first.stderr and "6 generations (0 cached)" in first.stderr
    assert "Ethics" in first.stdout and "Stereotype" in first.stdout
    second = ctrust(*args, db=db)
    assert second.returncode == 0, second.stderr
    assert "resuming run #1" in second.stderr and "(6 cached)" in second.stderr
    assert "nothing new to generate" in second.stderr
    runs = json.loads(ctrust("runs", "--json", db=db).stdout)
    assert len(runs) == 1 and runs[0]["status"] == "finished"
    assert set(runs[0]["scores"]) == {"stereotype", "ethics"}
    for s in runs[0]["scores"].values():
        assert 0 <= s["score"] <= 100 and s["n"] == 3


def test_bitsandbytes_nf4_runs_on_cpu(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    res = ctrust("run", "--compression", "bnb-nf4", "--dimensions", "ethics", "--limit", "2", db=db)
    assert res.returncode == 0, res.stderr
    assert "loaded bnb-nf4 on cpu" in res.stderr
    runs = json.loads(ctrust("runs", "--json", db=db).stdout)
    assert runs[0]["compression"] == "bnb-nf4" and runs[0]["scores"]["ethics"]["n"] == 2


def test_all_nine_dimensions_smoke(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    res = ctrust("run", "--dimensions", "all", "--profile", "smoke", "--limit", "2", db=db, timeout=1500)
    assert res.returncode == 0, res.stderr
    runs = json.loads(ctrust("runs", "--json", db=db).stdout)
    scores = runs[0]["scores"]
    assert set(scores) == {"toxicity", "stereotype", "privacy", "fairness", "ethics", "advglue", "ood",
                           "advdemo", "mmlu"}
    for dim, s in scores.items():
        assert s["n"] == 2, dim
        # the generic refusal-phrase share exists everywhere; the paper's own refusal rate only where the
        # fork reports one (a scenario a 2-record smoke run never reached gives None, as the fork would)
        assert 0 <= s["refusal_phrase_rate"] <= 1, dim
        assert s["refusal_rate"] is None or 0 <= s["refusal_rate"] <= 1, dim
    robust = json.loads(ctrust("runs", "--json", "--rules", "robust", db=db).stdout)[0]["scores"]
    assert all(0 <= s["refusal_rate"] <= 1 for s in robust.values()), robust
    assert scores["toxicity"]["scorer"].startswith("alt-profanity-check")
