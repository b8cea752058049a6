"""Trust vs compression: where each variant sits, and the PNG/SVG `ctrust export` draws."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tui"))

from tui_fixtures import build_db  # noqa: E402

from ctrust_tui.chart import BITS, SPARSITY, positions, trust_vs_compression  # noqa: E402
from ctrust_tui.store import open_store  # noqa: E402


def test_positions_on_the_bits_and_sparsity_axes() -> None:
    assert positions("none") == {BITS: 16.0, SPARSITY: 0.0}
    assert positions("gptq-4b-g128") == {BITS: 4 + 16 / 128}  # fp16 scale per group of 128
    assert positions("awq-3b-g128@c4-n8-l64-s0") == {BITS: 3 + (16 + 3) / 128}  # AWQ stores a zero point
    assert positions("bnb-nf4") == {BITS: 4.5}
    assert positions("wanda-2:4") == {SPARSITY: 0.5}
    assert positions("sparsegpt-0.3") == {SPARSITY: 0.3}
    assert positions("future-method-9") == {}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_db(tmp_path_factory.mktemp("chart"))


def test_panels_hold_one_point_per_run_with_its_interval(db: Path) -> None:
    with open_store(db, readonly=True) as store:
        runs = store.runs()
        scores = store.scores([r.id for r in runs])
    panels = {p.axis: p for p in trust_vs_compression(runs, scores)}
    assert set(panels) == {BITS, SPARSITY}
    bits = panels[BITS].series["ethics"]
    assert [(p.label, p.x) for p in bits] == [("gptq-4b-g128", 4.125), ("none", 16.0)]
    ethics = {s.run_id: s for s in scores if s.dimension == "ethics"}
    for p in bits:
        s = ethics[p.run_id]
        assert p.score == s.score and p.ci == (s.ci_low, s.ci_high)
    assert [p.label for p in panels[SPARSITY].series["ethics"]] == ["none", "wanda-2:4"]
    assert trust_vs_compression([r for r in runs if r.compression == "none"], scores) == []  # dense alone


def _ctrust(*args: str):
    import subprocess

    return subprocess.run([sys.executable, "-m", "ctrust_tui.cli", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])


def test_export_png_and_svg(db: Path, tmp_path: Path) -> None:
    png, svg, svg2 = tmp_path / "t.png", tmp_path / "t.svg", tmp_path / "t2.svg"
    for fmt, out in (("png", png), ("svg", svg), ("svg", svg2)):
        res = _ctrust("export", "1", "2", "3", "--format", fmt, "--out", str(out), "--db", str(db))
        assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for label in ("Ethics", "Stereotype", "effective bits per weight", "sparsity", "wanda-2:4", "gptq-4b-g128"):
        assert label in text, label
    assert svg.read_bytes() == svg2.read_bytes(), "the SVG must be byte-stable"
    res = _ctrust("export", "1", "2", "--format", "png", "--db", str(db))
    assert res.returncode == 2 and "pass --out FILE.png" in res.stderr
    res = _ctrust("export", "1", "--format", "svg", "--out", str(tmp_path / "x.svg"), "--db", str(db))
    assert res.returncode == 2 and "nothing to plot" in res.stderr


def test_terminal_plot_draws_points_ticks_and_values(db: Path) -> None:
    from ctrust_tui.tui.widgets.plot import trust_plot

    with open_store(db, readonly=True) as store:
        runs = store.runs()
        scores = store.scores([r.id for r in runs])
    text = trust_plot(trust_vs_compression(runs, scores), 80).plain
    ethics = text[text.index("Ethics"):text.index("Privacy")]
    assert ethics.count("●") == 4  # none + gptq on the bits chart, none + wanda on the sparsity chart
    assert "4.12" in ethics and "16" in ethics and "50%" in ethics
    assert "none 60.0 · gptq-4b-g128 42.5 · wanda-2:4 45.0" in ethics
    assert max(len(line) for line in text.splitlines()) <= 80
