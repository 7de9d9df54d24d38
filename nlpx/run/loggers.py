"""Loggers: the run's own metrics.jsonl (always) plus the configured one (W&B offline, CSV, none),
made by the function conf/logger/<name>.yaml names in `_target_`.

metrics.jsonl is ours rather than Lightning's CSVLogger because a resumed run must append to the
same file, dropping rows logged after the checkpoint it resumes from; CSVLogger rewrites it whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only


class JsonlLogger(Logger):
    def __init__(self, path: Path, resume_step: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.global_step = None  # set by the run to a callable returning trainer.global_step
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line and json.loads(line).get("step", 0) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    @property
    def name(self):
        return "jsonl"

    @property
    def version(self):
        return 0

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        # Lightning passes a 0-based batch counter (99 for what the progress bar calls step 100);
        # rows carry the optimizer step count instead, the number a reader compares runs by
        if self.global_step is not None:
            step = self.global_step()
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def build_loggers(cfg, run_dir: Path, config_dict: dict, resume_step: int | None) -> list[Logger]:
    from hydra.utils import get_method

    loggers: list[Logger] = [JsonlLogger(run_dir / "metrics.jsonl", resume_step)]
    lc = cfg.logger
    target = lc.get("_target_")
    if target is None:  # a run saved before loggers had one, resumed: its option's current yaml
        from nlpx.config import option_target

        target = option_target("logger", str(lc.name))
    extra = get_method(target)(lc, run_dir=run_dir, config=config_dict, experiment=cfg.experiment)
    if extra is not None:
        loggers.append(extra)
    return loggers


def wandb_logger(lc, *, run_dir: Path, config: dict, experiment: str) -> Logger:
    """logger=wandb: one W&B run per run directory, offline unless logger.mode=online."""
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(
        project=lc.project, entity=lc.entity, name=run_dir.name, id=_wandb_id(run_dir),
        save_dir=str(run_dir), offline=lc.mode == "offline", mode=lc.mode,
        group=lc.group or experiment, job_type=lc.job_type, tags=list(lc.tags),
        config=config, resume="allow")


def csv_logger(lc, *, run_dir: Path, config: dict, experiment: str) -> Logger:
    """logger=csv: Lightning's CSVLogger under <run>/csv/."""
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=str(run_dir), name="csv", version="")


def no_logger(lc, *, run_dir: Path, config: dict, experiment: str) -> None:
    """logger=none: metrics.jsonl only."""
    return None


def close_loggers(loggers, success: bool = True) -> None:
    """Finalize every logger and end the W&B run: Lightning's WandbLogger leaves it open, and the
    next run in the same process (a sweep, `nlpx eval glue`, tests) would log into it."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        lg.finalize("success" if success else "failed")
        if isinstance(lg, WandbLogger):
            import wandb

            wandb.finish(exit_code=0 if success else 1)


def _wandb_id(run_dir: Path) -> str:
    """A stable W&B id per run directory, so a resumed run continues the same W&B run."""
    import hashlib

    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
