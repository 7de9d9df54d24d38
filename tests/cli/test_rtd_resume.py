"""An RTD run stopped after a checkpoint and resumed equals the uninterrupted run: the generator,
the discriminator and the sharing state (E_Δ under GDES; one table under ES) all come back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlpx.config import compose
from tests.conftest import killed_and_resumed
from nlpx.recipes.train import train

STEPS = 6


def run(overrides):
    return train(compose(overrides), overrides)


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("mode", ["gdes", "es"])
def test_interrupted_and_resumed_rtd_equals_uninterrupted(mode, small, tmp_path, monkeypatch):
    args = ["model=electra", "objective=rtd", f"objective.sharing={mode}", "trainer.checkpoint_every_n_steps=3"]
    reference = run(small(*args, steps=STEPS))

    interrupted = small(*args, steps=STEPS)
    interrupted[interrupted.index(f"runs_dir={tmp_path / 'runs'}")] = f"runs_dir={tmp_path / 'b'}"
    run_dir, resumed, from_step = killed_and_resumed(interrupted, tmp_path / "b", monkeypatch)
    assert from_step == 3
    assert resumed["steps"] == reference["steps"] == STEPS
    for key, value in reference["final"].items():
        assert resumed["final"][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    a, b = weights(Path(reference["run_dir"])), weights(run_dir)
    assert a.keys() == b.keys()
    delta = "model.electra.embeddings.word_embeddings.parametrizations.weight.original"
    assert (delta in a) == (mode == "gdes")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    exported = json.loads((run_dir / "summary.json").read_text())["rtd"]
    assert exported["sharing"] == mode
