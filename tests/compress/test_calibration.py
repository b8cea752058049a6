import json

import pytest
import torch

from ctrust_tui.compress.calibration import load_calibration_ids, load_eval_text
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.errors import CtrustError


def char_tok(text):
    return {"input_ids": [ord(c) % 251 for c in text]}


@pytest.mark.parametrize("source", ["wikitext2", "c4"])
def test_seeded_windows_are_deterministic(source):
    cfg = CalibrationConfig(source=source, nsamples=6, seqlen=64, seed=3)
    a = load_calibration_ids(char_tok, cfg)
    b = load_calibration_ids(char_tok, cfg)
    c = load_calibration_ids(char_tok, CalibrationConfig(source=source, nsamples=6, seqlen=64, seed=4))
    assert a.dtype == torch.long and a.shape == (6, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_user_txt_windows_come_from_the_text(tmp_path):
    text = "".join(chr(97 + (i * 7) % 26) for i in range(5000))
    p = tmp_path / "calib.txt"
    p.write_text(text)
    ids = load_calibration_ids(char_tok, CalibrationConfig(source=str(p), nsamples=4, seqlen=100, seed=0))
    stream = "".join(chr(x) for x in char_tok(text)["input_ids"])
    for row in ids.tolist():
        assert "".join(map(chr, row)) in stream


def test_user_jsonl_and_clear_errors(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": "hello world " * 20}) for _ in range(5)))
    ids = load_calibration_ids(char_tok, CalibrationConfig(source=str(p), nsamples=2, seqlen=50))
    assert ids.shape == (2, 50)
    with pytest.raises(CtrustError, match="too little text.*fewer samples"):
        load_calibration_ids(char_tok, CalibrationConfig(source=str(p), nsamples=100, seqlen=100))
    short = tmp_path / "short.txt"
    short.write_text("just a few words")
    with pytest.raises(CtrustError, match="too little text"):
        load_calibration_ids(char_tok, CalibrationConfig(source=str(short), nsamples=2, seqlen=64))
    with pytest.raises(CtrustError, match="neither"):
        load_calibration_ids(char_tok, CalibrationConfig(source=str(tmp_path / "missing.txt")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(CtrustError, match="'text'"):
        load_calibration_ids(char_tok, CalibrationConfig(source=str(bad)))
    with pytest.raises(CtrustError, match="longest document"):
        load_calibration_ids(char_tok, CalibrationConfig(source="c4", nsamples=1, seqlen=10**7))


def test_eval_text_is_wikitext2_test():
    text = load_eval_text()
    assert len(text.encode("utf-8")) == 1_290_590
    assert text.startswith(" \n = Robert Boulter = \n")
    with pytest.raises(CtrustError):
        load_eval_text("ptb")


def test_calibration_config_validates_itself_once():
    """CLI, Setup and compress_model all build a CalibrationConfig: bad values fail right there."""
    from ctrust_tui.compress.types import MIN_SEQLEN

    for kwargs, message in [({"nsamples": 0}, "nsamples must be an integer >= 1"),
                            ({"seqlen": MIN_SEQLEN - 1}, f"seqlen must be an integer >= {MIN_SEQLEN}"),
                            ({"precision": "fp8"}, "choose one of auto, fp32, bf16"),
                            ({"seed": -1}, "seed must be an integer >= 0"),
                            ({"source": " "}, "choose c4, wikitext2 or a .txt/.jsonl file")]:
        with pytest.raises(CtrustError, match=message):
            CalibrationConfig(**kwargs)
    assert CalibrationConfig(seqlen=MIN_SEQLEN).seqlen == MIN_SEQLEN
