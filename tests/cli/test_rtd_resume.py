"""An RTD run stopped after a checkpoint and resumed equals the uninterrupted run: the generator,
the discriminator and the sharing state (E_Δ under GDES; one table under ES) all come back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlpx.config import compose
from nlpx.train.module import PretrainModule
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

    class Killed(RuntimeError):
        pass

    start = PretrainModule.on_train_batch_start

    def dies_at_step_4(self, batch, batch_idx):
        if self.batches_seen == 4:  # after the step-3 checkpoint, before the step-4 update
            raise Killed
        return start(self, batch, batch_idx)

    monkeypatch.setattr(PretrainModule, "on_train_batch_start", dies_at_step_4)
    interrupted = small(*args, steps=STEPS)
    interrupted[interrupted.index(f"runs_dir={tmp_path / 'runs'}")] = f"runs_dir={tmp_path / 'b'}"
    with pytest.raises(Killed):
        run(interrupted)
    monkeypatch.setattr(PretrainModule, "on_train_batch_start", start)
    (run_dir,) = (tmp_path / "b" / "default").iterdir()
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    resumed = run([f"resume={run_dir}"])

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
