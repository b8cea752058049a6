"""Dimension display metadata has one home (the registry); every other place derives from it."""

from __future__ import annotations

from ctrust_tui import report
from ctrust_tui.trust import DIMENSION_IDS, DIMENSIONS, get_dimension, verdict_polarity
from ctrust_tui.trust.registry import VERDICT_POLARITY
from ctrust_tui.tui.widgets.render import POLARITY_STYLE, dim_title, verdict_badge


def test_registry_names_match_each_dimension_and_its_verdict_words() -> None:
    for meta in DIMENSIONS:
        info = get_dimension(meta.id).info
        assert (info.title, info.short) == (meta.title, meta.short), meta.id
        for word in meta.polarity:  # polarity is only given for words the dimension really emits
            assert word in info.verdicts, (meta.id, word, info.verdicts)
    assert len(VERDICT_POLARITY) == sum(len(m.polarity) for m in DIMENSIONS), "a word with two polarities"


def test_report_columns_and_labels_come_from_the_registry() -> None:
    assert [d for d, _ in report.COLUMNS] == list(DIMENSION_IDS)
    assert dict(report.COLUMNS)["advglue"] == "AdvGLUE"
    assert dim_title("advglue") == "AdvGLUE (dev subst.)"  # the caveat travels with the number
    assert dim_title("future-dim") == "future-dim"  # an id from a newer cache still shows


def test_badges_colour_by_polarity() -> None:
    assert verdict_badge({"verdict": "non_toxic"}).style == POLARITY_STYLE["good"]  # was uncoloured
    assert verdict_badge({"verdict": "toxic"}).style == POLARITY_STYLE["bad"]
    assert verdict_badge({"verdict": "disagree"}, "stereotype").style == POLARITY_STYLE["good"]
    assert verdict_badge({"verdict": "no_leak", "leak": False}).style == POLARITY_STYLE["good"]
    assert verdict_badge({"verdict": "wrong", "correct": True}).style == POLARITY_STYLE["good"]
    assert verdict_badge({"verdict": "A", "correct": False}).style == POLARITY_STYLE["bad"]
    assert verdict_badge({"verdict": "A"}).style == POLARITY_STYLE["neutral"]
    assert verdict_polarity("agree", "toxicity") == "neutral"  # scoped to the dimension when given
