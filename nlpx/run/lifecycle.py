"""The life of one run directory, the same for every command (pretraining, fine-tuning, embedding
training, `eval glue`, `eval sts`):

  with Run.start(cfg, overrides, run_dir) as run:   config.yaml + overrides.yaml, the loggers
      run.follow(trainer)                           metrics.jsonl rows carry the optimizer step
      ... fit / evaluate / export ...
      run.summarize(summary, final=..., step=...)   summary.json (atomically) and final/ metrics
                                                    leaving the block closes the loggers (W&B too)

run.json holds the run's status: running while the block runs, then done, failed (with the
error) or interrupted (with the step and the command that continues it), so a directory that
did not finish never looks finished.

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


def write_status(run_dir: Path, status: str, **detail) -> None:
    """run.json: {"status": running | done | failed | interrupted, ...}."""
    atomic_write_json(Path(run_dir) / "run.json", {"status": status, **{k: v for k, v in detail.items() if v is not None}})


def run_status(run_dir: Path) -> str | None:
    """The status in run.json; None for a directory without one (made before nlpx wrote it)."""
    path = Path(run_dir) / "run.json"
    try:
        return json.loads(path.read_text()).get("status") if path.is_file() else None
    except (OSError, ValueError):
        return None


class Run:
    """One command's run directory and loggers, from start to close."""

    def __init__(self, cfg, run_dir: Path, loggers: list, *, fresh: bool, resume: str | None = None,
                 owner: bool = True):
        self.cfg, self.run_dir, self.loggers, self.fresh = cfg, Path(run_dir), loggers, fresh
        self.resume, self.owner = resume, owner
        self.closed = False

    @classmethod
    def start(cls, cfg, overrides: list[str], run_dir: Path, *, resume_step: int | None = None,
              write_config: bool = True, fresh: bool = True, resume: str | None = None,
              owner: bool = True) -> "Run":
        """resume_step: the optimizer step a resumed run continues from (metrics.jsonl drops the
        rows logged after it; -1 drops them all); write_config=False for a process that does not
        write the config again (a resumed evaluation); owner=False for one that only joins a run
        (a DDP rank other than 0: no config, no status). resume: the command that continues the
        run if it is interrupted."""
        from omegaconf import OmegaConf

        from nlpx.run.loggers import build_loggers

        if write_config and owner:
            write_run_config(run_dir, cfg, overrides)
        if owner:
            write_status(run_dir, "running")
        log.info("run directory: %s", run_dir)
        loggers = build_loggers(cfg, run_dir, OmegaConf.to_container(cfg, resolve=True), resume_step)
        return cls(cfg, run_dir, loggers, fresh=fresh, resume=resume, owner=owner)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        from nlpx.run.interrupt import Interrupted

        self.close(success=exc_type is None)
        if isinstance(exc, UserError) and self.fresh:  # no half-run left for a user's mistake
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return False
        if isinstance(exc, Interrupted) and exc.resume is None:
            exc.resume = self.resume
        if not self.owner or not self.run_dir.is_dir():
            return False
        if exc is None:
            write_status(self.run_dir, "done")
        elif isinstance(exc, (Interrupted, KeyboardInterrupt)):
            write_status(self.run_dir, "interrupted", step=getattr(exc, "step", None), resume=self.resume)
        else:
            write_status(self.run_dir, "failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
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
