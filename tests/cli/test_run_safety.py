"""What a run leaves behind when it does not end normally: Ctrl-C and SIGTERM (a checkpoint, the
step and the command that continues it, exit 130, a resume equal to an uninterrupted run), a full
disk (one line, exit 1, no temporary file), a failure (run.json says so), a run stopped before its
first checkpoint (resume starts it again), and the files of the export."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import NLPX, REPO, SMALL, cli, cli_env


def train_args(runs: Path, steps: int, *extra: str) -> list[str]:
    return ["train", *SMALL, f"runs_dir={runs}", f"budget.max_steps={steps}", f"trainer.val_check_interval={steps}",
            f"trainer.checkpoint_every_n_steps={steps}", "trainer.limit_val_batches=2", *extra]


def only_run(runs: Path) -> Path:
    (run,) = [p.parent for p in runs.rglob("config.yaml")]
    return run


@pytest.mark.slow
def test_a_signal_saves_says_where_and_the_resume_equals_an_uninterrupted_run(cache_dir, tmp_path):
    steps = 50  # the signal comes at step 5: 45 steps (about 4 s; longer on a loaded machine) for it to arrive while training
    full = cli(*train_args(tmp_path / "a", steps), cache_dir=cache_dir)
    assert full.returncode == 0, full.stderr
    reference = json.loads((only_run(tmp_path / "a") / "summary.json").read_text())
    for sig in (signal.SIGINT, signal.SIGTERM):  # one reference run for both (it is most of the time)
        interrupt_and_resume(sig, steps, reference, cache_dir, tmp_path / sig.name)


def interrupt_and_resume(sig, steps: int, reference: dict, cache_dir: Path, runs: Path) -> None:
    proc = subprocess.Popen([*NLPX, *train_args(runs, steps)], cwd=REPO, env=cli_env(cache_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # one progress line per step (log_every_n_steps=1)
        if line.startswith("step 5/"):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (sig.name, err[-3000:])
    run = only_run(runs)
    status = json.loads((run / "run.json").read_text())
    step = status["step"]
    assert status["status"] == "interrupted" and 5 <= step < steps
    assert err.strip().splitlines()[-1] == (f"nlpx: interrupted by {sig.name} at step {step}; continue with: "
                                            f"nlpx train resume={run}")
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step
    assert not (run / "summary.json").exists() and "Traceback" not in err

    resumed = cli("train", f"resume={run}", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == steps and json.loads((run / "run.json").read_text()) == {"status": "done"}
    for key in ("val/mlm_loss", "val/mlm_acc"):
        a, b = reference["final"][key], summary["final"][key]
        assert abs(a - b) <= 1e-4 * abs(a), (sig.name, key, a, b, step)
    steps_logged = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(steps_logged)


def test_resume_before_the_first_checkpoint_starts_again_with_the_saved_config(pretrained_run, cache_dir, tmp_path):
    run = tmp_path / "runs" / "default" / "early"
    run.parent.mkdir(parents=True)
    run.mkdir()
    (run / "config.yaml").write_text((pretrained_run / "config.yaml").read_text())
    (run / "metrics.jsonl").write_text('{"step": 0, "val/mlm_loss": 1.0}\n')
    out = cli("train", f"resume={run}", cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["run_dir"] == str(run)
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[0].get("val/mlm_loss") != 1.0  # the stale row was dropped


def test_a_failed_run_says_so_and_keeps_its_traceback(small, monkeypatch, tmp_path):
    from nlpx.config import compose
    from nlpx.recipes.train import train
    from nlpx.run import export

    def broken(*args, **kwargs):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(export, "export_hf", broken)  # pretrain() imports it when it runs
    overrides = small()
    with pytest.raises(RuntimeError, match="an internal bug"):
        train(compose(overrides), overrides)
    run = only_run(tmp_path / "runs")
    assert json.loads((run / "run.json").read_text()) == {"status": "failed", "error": "RuntimeError: an internal bug"}
    assert not (run / "summary.json").exists()


def test_a_finished_run_is_done_and_its_export_is_0644(pretrained_run):
    from nlpx.rundir import file_mode

    assert json.loads((pretrained_run / "run.json").read_text()) == {"status": "done"}
    modes = {p.name: p.stat().st_mode & 0o777 for p in (pretrained_run / "hf").iterdir()}
    assert modes["model.safetensors"] == file_mode() and set(modes.values()) == {file_mode()}


def test_the_export_swap_leaves_no_sibling(tmp_path):
    from nlpx.run.export import swap_in

    target, new = tmp_path / "hf", tmp_path / "hf.tmp"
    target.mkdir()
    (target / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    swap_in(new, target)
    assert (target / "a").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_a_full_disk_is_one_line_exit_1_and_no_temporary_file(small, cache_dir, monkeypatch, tmp_path):
    """ENOSPC injected into the checkpoint writer (always runs)."""
    from nlpx.run import callbacks

    def full(self, data):
        self.error = OSError(errno.ENOSPC, "No space left on device")
        raise self.error

    monkeypatch.setattr(callbacks._Sink, "write", full)
    out = cli("train", *small(), cache_dir=cache_dir)
    assert out.returncode == 1
    run = only_run(tmp_path / "runs")
    assert out.stderr.strip().splitlines()[-1] == \
        f"nlpx: error: no space left on device writing {run / 'checkpoints' / 'step-00000002.ckpt'}"
    assert "Traceback" not in out.stderr
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root and a system that allows mounts; else skipped)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if sys.platform != "linux" or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                                                 capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield disk
    for _ in range(20):
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)


def test_a_really_full_disk(small_disk, cache_dir):
    out = cli(*train_args(small_disk, 2, "model.size=mini"), cache_dir=cache_dir)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("nlpx: error: no space left on device")
    assert "Traceback" not in out.stderr
    assert not [p for p in small_disk.rglob("*") if ".tmp" in p.name]


def test_package_model_is_found_without_importing_the_package(tmp_path, monkeypatch):
    from nlpx.pretrained import resolve_pretrained

    pkg = tmp_path / "site" / "shipsamodel"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (pkg / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve_pretrained("package:shipsamodel") == pkg / "model"
    assert "shipsamodel" not in sys.modules


def test_lightnings_sigterm_handler_gives_way_to_nlpxs():
    """Lightning installs a SIGTERM handler when fit or validate starts, which ends the run with a
    SystemExit of status 0 and no checkpoint; StopOnSignal puts nlpx's back for both."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from nlpx.run import interrupt
    from nlpx.run.callbacks import StopOnSignal

    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(("train", signal.getsignal(signal.SIGTERM) is interrupt._handler))

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.append(("val", signal.getsignal(signal.SIGTERM) is interrupt._handler))

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)
    with interrupt.handling():
        trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            callbacks=[StopOnSignal(), Probe()])
        trainer.validate(Tiny(), data, verbose=False)
        trainer.fit(Tiny(), data, data)
    assert seen and all(ok for _, ok in seen), seen
    assert {kind for kind, _ in seen} == {"train", "val"}
