"""The life of one run directory, the same for every command (pretraining, fine-tuning, embedding
training, `eval glue`, `eval sts`):

  with Run.start(cfg, overrides, run_dir) as run:   config.yaml + overrides.yaml, the loggers
      run.follow(trainer)                           metrics.jsonl rows carry the optimizer step
      ... fit / evaluate / export ...
      run.summarize(summary, final=..., step=...)   summary.json (atomically) and final/ metrics
                                                    leaving the block closes the loggers (W&B too)

A command checks everything a user can get wrong before it calls Run.start, so a bad input never
leaves a run directory behind; a UserError found later (a LoRA target the model lacks) removes the
directory of a fresh run on the way out.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text

log = logging.getLogger("nlpx")


def quiet_libraries() -> None:
    """Lightning and transformers talk a lot at INFO level; nlpx prints what matters itself."""
    import warnings

    import transformers

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # advice about DataLoader workers does not apply to small CPU runs; nlpx sets them in cfg.data
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`weights_only` was not set.*")
    # nlpx's BucketBatchSampler returns every index (fine-tuning checks it on each evaluation)
    warnings.filterwarnings("ignore", message=".*custom batch sampler `BucketBatchSampler`.*")
    # small fine-tuning sets have fewer batches per epoch than the logging interval
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")


def write_run_config(run_dir: Path, cfg, overrides: list[str]) -> None:
    """config.yaml (the resolved config) and overrides.yaml (every command line that ran it)."""
    from omegaconf import OmegaConf

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    history = run_dir / "overrides.yaml"
    previous = OmegaConf.to_container(OmegaConf.load(history)) if history.exists() else []
    atomic_write_text(history, OmegaConf.to_yaml(previous + [list(overrides)]))


class Run:
    """One command's run directory and loggers, from start to close."""

    def __init__(self, cfg, run_dir: Path, loggers: list, *, fresh: bool):
        self.cfg, self.run_dir, self.loggers, self.fresh = cfg, Path(run_dir), loggers, fresh
        self.closed = False

    @classmethod
    def start(cls, cfg, overrides: list[str], run_dir: Path, *, resume_step: int | None = None,
              write_config: bool = True, fresh: bool = True) -> "Run":
        """resume_step: the optimizer step a resumed run continues from (metrics.jsonl drops the
        rows logged after it; -1 drops them all); write_config=False for a process that only
        joins a run (a DDP rank other than 0, a resumed evaluation)."""
        from omegaconf import OmegaConf

        from nlpx.run.loggers import build_loggers

        if write_config:
            write_run_config(run_dir, cfg, overrides)
        log.info("run directory: %s", run_dir)
        loggers = build_loggers(cfg, run_dir, OmegaConf.to_container(cfg, resolve=True), resume_step)
        return cls(cfg, run_dir, loggers, fresh=fresh)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close(success=exc_type is None)
        if isinstance(exc, UserError) and self.fresh:  # no half-run left for a user's mistake
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return False

    def follow(self, trainer) -> None:
        """metrics.jsonl rows carry trainer.global_step, the optimizer step a reader compares runs
        by (Lightning passes its own batch counter)."""
        from nlpx.run.loggers import JsonlLogger

        for lg in self.loggers:
            if isinstance(lg, JsonlLogger):
                lg.global_step = lambda: trainer.global_step

    def log_metrics(self, metrics: dict, step: int) -> None:
        for lg in self.loggers:
            lg.log_metrics(metrics, step=step)

    def log_table(self, key: str, header: list[str], rows: list[list[str]]) -> None:
        """A table for the loggers that keep tables (W&B)."""
        for lg in self.loggers:
            if hasattr(lg, "log_table"):
                lg.log_table(key=key, columns=header, data=rows)

    def summarize(self, summary: dict, *, final: dict | None = None, step: int = 0,
                  keep_existing: bool = False) -> dict:
        """summary.json: `summary` plus the versions and git commit; `final` metrics are also
        logged as final/<key> at `step`. keep_existing: what other commands recorded in the
        run's summary (a GLUE evaluation of it) stays."""
        from nlpx.run.export import summary_info

        summary = {**summary, **summary_info()}
        path = self.run_dir / "summary.json"
        if keep_existing and path.is_file():
            for key, value in json.loads(path.read_text()).items():
                summary.setdefault(key, value)
        atomic_write_json(path, summary)
        if final:
            self.log_metrics({f"final/{k}": v for k, v in final.items()}, step=step)
        return summary

    def close(self, success: bool = True) -> None:
        from nlpx.run.loggers import close_loggers

        if not self.closed:
            self.closed = True
            close_loggers(self.loggers, success=success)
