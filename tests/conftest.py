"""Shared fixtures: small, fast configs and one tokenized-corpus cache for the whole session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `make test` runs one pytest-xdist worker per core: each worker (and the CLI processes it starts,
# which inherit the variable) gets its share of the cores, not torch's default of all of them,
# which would oversubscribe the machine. Set before any test module imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

REPO = Path(__file__).resolve().parents[1]
NLPX = [sys.executable, "-m", "nlpx.cli"]


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` (20 s or more of one core) run first. pytest-xdist's worksteal
    scheduler hands each worker a contiguous slice of this list and lets an idle worker take from
    the end of another's: a long test left late in the list would run alone while the other worker
    waits, and lengthen the suite by its own duration."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise


# a small synthetic corpus and a tiny model: a 2-step run takes a second or two
SMALL = ["model.size=tiny", "data.num_docs=200", "data.vocab_size=600", "data.seq_len=64",
         "data.batch_size=8", "logger=none", "trainer.log_every_n_steps=1"]


def data_dir() -> Path | None:
    """Real data (GLUE, corpora) for integration tests: $NLPX_DATA or ../shared/data."""
    path = Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One corpus cache for the whole run, shared by the pytest-xdist workers (whose temporary
    folders are siblings): an entry is built in a private folder and renamed into place
    (nlpx/data/cache.py), so concurrent builds are safe, and a corpus one worker built is a hit
    for the other instead of a second build."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp("nlpx_cache")
    shared = tmp_path_factory.getbasetemp().parent / "nlpx_cache"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture
def small(cache_dir, tmp_path):
    """Overrides for a fast run writing under tmp_path."""

    def make(*extra: str, steps: int = 2) -> list[str]:
        return [*SMALL, f"data.cache_dir={cache_dir}", f"runs_dir={tmp_path / 'runs'}",
                f"budget.max_steps={steps}", f"trainer.val_check_interval={steps}",
                f"trainer.checkpoint_every_n_steps={steps}", "trainer.limit_val_batches=2", *extra]

    return make


def cli(*args: str, cache_dir: Path):
    """`nlpx ARGS` run in this process through typer's test runner: the exit code, stdout and
    stderr the console script would give, without a second interpreter's ~6 s of imports. Tests
    of what only a real process shows (signals, DDP's relaunch, log lines, the entry point) start
    one with NLPX instead. An unexpected exception is raised again, traceback and all."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from nlpx.cli import app

    result = CliRunner().invoke(app, list(args), env={"NLPX_CACHE": str(cache_dir), "NLPX_RUN_ID": None})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def cli_env(cache_dir: Path) -> dict:
    env = dict(os.environ, NLPX_CACHE=str(cache_dir), WANDB_MODE="offline", PYTHONUNBUFFERED="1")
    env.pop("NLPX_RUN_ID", None)
    return env


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> Path:
    """Every GLUE task (and AX) in the official layout, a few dozen rows each."""
    from tests.glue_fixture import write_glue

    return write_glue(tmp_path_factory.mktemp("glue"))


@pytest.fixture(scope="session")
def clue(tmp_path_factory) -> Path:
    """CLUE in the official layout with ../shared/data's tasks: afqmc, ocnli (no train), cluewsc2020."""
    from tests.clue_fixture import write_clue

    return write_clue(tmp_path_factory.mktemp("clue"))


@pytest.fixture(scope="session")
def fewclue(tmp_path_factory) -> Path:
    """FewCLUE in the official layout with ../shared/data's seven tasks."""
    from tests.clue_fixture import write_fewclue

    return write_fewclue(tmp_path_factory.mktemp("fewclue"))


@pytest.fixture(scope="session")
def pretrained_run(tmp_path_factory, cache_dir) -> Path:
    """An nlpx pretraining run directory (tiny BERT, 2 steps) to fine-tune from."""
    from nlpx.config import compose
    from nlpx.recipes.train import train

    runs = tmp_path_factory.mktemp("pretrained")
    overrides = [*SMALL, f"data.cache_dir={cache_dir}", f"runs_dir={runs}", "budget.max_steps=2",
                 "trainer.val_check_interval=2", "trainer.limit_val_batches=1"]
    return Path(train(compose(overrides), overrides)["run_dir"])


def finetune_overrides(pretrained: Path, glue: Path, *, task: str = "sst2", steps: int = 2) -> list[str]:
    """A quick objective=classify run on the fixture data."""
    return [f"model.pretrained={pretrained}", f"data.glue_dir={glue}", f"task={task}",
            f"budget.max_steps={steps}", "task.batch_size=8", "budget.max_epochs=1", "logger=none",
            "trainer.log_every_n_steps=1"]


def embedding_overrides(pretrained: Path, glue: Path, runs: Path, *extra: str, steps: int = 2) -> list[str]:
    """A quick objective=simcse|esimcse|angle run from the tiny pretrained run, validated on the
    fixture STS-B dev."""
    return [f"model.pretrained={pretrained}", f"runs_dir={runs}", "logger=none", f"budget.max_steps={steps}",
            f"trainer.val_check_interval={steps}", "trainer.log_every_n_steps=1", "objective.batch_size=4",
            f"objective.validation.glue_dir={glue}", "objective.validation.split=dev", *extra]


def killed_and_resumed(overrides: list[str], runs: Path, monkeypatch, *, dies_at: int = 4) -> tuple[Path, dict, int]:
    """Run `overrides` (a pretraining run writing under `runs`) until the update of step `dies_at`
    (after an earlier checkpoint), then `nlpx train resume=` it: (its run directory, the resumed
    run's summary, the step of the checkpoint it resumed from)."""
    import torch

    from nlpx.config import compose
    from nlpx.recipes.train import train
    from nlpx.train.module import PretrainModule

    class Killed(RuntimeError):
        pass

    start = PretrainModule.on_train_batch_start

    def dies(self, batch, batch_idx):
        if self.batches_seen == dies_at:
            raise Killed
        return start(self, batch, batch_idx)

    monkeypatch.setattr(PretrainModule, "on_train_batch_start", dies)
    with pytest.raises(Killed):
        train(compose(overrides), overrides)
    monkeypatch.setattr(PretrainModule, "on_train_batch_start", start)
    (run_dir,) = (runs / "default").iterdir()
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    resumed = [f"resume={run_dir}"]
    return run_dir, train(compose(resumed), resumed), step
