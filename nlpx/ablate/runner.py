"""Running an ablation's cells: each cell's stages in order, resumable, failures recorded.

Where things go (root = runs_dir/ablate/<name>):
  root/plan.json                                 the spec, size and every cell (written first)
  root/cells/<arm>/seed<k>-<key>/cell.json       status: done | failed (+ error), per stage
  root/cells/<arm>/seed<k>-<key>/<stage>/        the stage's own run directory

A cell's key is the hash of its resolved stage configs (spec.cell_key), so rerunning the same
command finds the same directories: finished cells are skipped, a stage with a summary is not
run again, and an interrupted stage resumes (`nlpx train resume=`, `nlpx eval glue resume=`).
A failing cell writes its error to cell.json and the next cell runs.

A pretraining stage with trainer=ddp runs as its own `nlpx train` process (its output in
root/cells/.../<stage>.log): Lightning starts each extra local rank by re-running the command
line of the process that fits, and that command must be the stage's, not `nlpx ablate`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from pathlib import Path

from nlpx.ablate.spec import NO_TRAINING, PLACEHOLDER, Cell, Spec, dir_name, resolved, uses_ddp
from nlpx.rundir import atomic_write_json

log = logging.getLogger("nlpx")


def cell_home(cell: Cell) -> Path:
    return next(iter(cell.run_dirs.values())).parent


def status(cell: Cell) -> dict | None:
    path = cell_home(cell) / "cell.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_plan(spec: Spec, size: str, extra: list[str], cells: list[Cell], root: Path) -> None:
    atomic_write_json(root / "plan.json", {
        "experiment": spec.name, "spec": str(spec.path), "description": spec.description, "size": size,
        "overrides": extra, "baseline": spec.baseline, "arms": list(spec.arms), "seeds": list(spec.seeds),
        "metrics": list(spec.metrics), "stages": [{"name": s.name, "command": s.command} for s in spec.stages],
        "cells": [{"arm": c.arm, "seed": c.seed, "key": c.key, "stages": c.stages,
                   "run_dirs": {k: str(v) for k, v in c.run_dirs.items()}} for c in cells]})


def stage_done(command: str, run_dir: Path) -> bool:
    """Finished: its results are written and its run.json (where it has one) says done, so a run
    resumed for a longer budget and interrupted again is not taken as finished."""
    from nlpx.run.lifecycle import run_status

    written = (run_dir / ("summary.json" if command == "train" else "results.json")).is_file()
    return written and run_status(run_dir) in (None, "done")


def stage_overrides(spec: Spec, cell: Cell, stage) -> list[str]:
    """The stage's overrides with earlier stages' run directories filled in and its own
    run directory (runs_dir / experiment / run_id) appended; resume= where it started before."""
    run_dir = cell.run_dirs[stage.name]
    overrides = [PLACEHOLDER.sub(lambda m: str(cell.run_dirs[m.group(1)]), o) for o in cell.stages[stage.name]]
    if (run_dir / "config.yaml").is_file():  # interrupted: continue it
        if (stage.command == "train" and not (run_dir / "checkpoints" / "last.ckpt").is_file()) \
                or stage.command in NO_TRAINING:
            shutil.rmtree(run_dir)  # died before its first checkpoint (eval sts / mlm have none): start again
        else:
            return [f"resume={run_dir}"]
    elif run_dir.exists():  # made, but killed before its config was written: nothing to keep
        shutil.rmtree(run_dir)
    return [*overrides, *wandb_grouping(spec, cell, overrides), f"runs_dir={run_dir.parent.parent}",
            f"experiment={run_dir.parent.name}", f"run_id={run_dir.name}"]


def wandb_grouping(spec: Spec, cell: Cell, overrides: list[str]) -> list[str]:
    """W&B group = the experiment, job type = the arm, so the W&B UI groups the cells; only when
    the stage's logger takes a group and a job type (W&B, the default logger, unless an override
    picks another)."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("logger=")]
    if chosen and not _groups_runs(chosen[-1]):
        return []
    # the arm as its folder is named: an axis arm's "key=value" would not parse as an override value
    return [f"logger.group={spec.name}", f"logger.job_type={dir_name(cell.arm)}"]


def _groups_runs(logger: str) -> bool:
    import yaml

    from nlpx.config import conf_dir

    path = conf_dir() / "logger" / f"{logger}.yaml"
    keys = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    return "group" in keys and "job_type" in keys


def run_cell(spec: Spec, cell: Cell) -> dict:
    """Run (or finish) one cell; returns its cell.json record. Never raises for a failing stage.

    A stage that failed before starts again from scratch with the current settings (the failure
    may have been theirs: a logger, a path); one that was interrupted resumes."""
    home = cell_home(cell)
    before = status(cell)
    if before and before.get("status") == "failed":
        shutil.rmtree(cell.run_dirs[before["failed_stage"]], ignore_errors=True)
    record = {"arm": cell.arm, "seed": cell.seed, "key": cell.key, "status": "running", "stages": {}}
    started = time.time()
    ddp = {name for name, config in resolved(cell, spec).items() if uses_ddp(config)}
    for stage in spec.stages:
        run_dir = cell.run_dirs[stage.name]
        if stage_done(stage.command, run_dir):
            record["stages"][stage.name] = {"run_dir": str(run_dir), "status": "done"}
            continue
        overrides = stage_overrides(spec, cell, stage)
        log.info("ablate %s: %s %s %s", spec.name, cell.name, stage.name, " ".join(overrides))
        try:
            if stage.name in ddp:
                _run_stage_process(stage.command, overrides, home / f"{stage.name}.log")
            else:
                _run_stage(stage.command, overrides)
        except Exception as e:  # a failing cell must not stop the others: recorded, reported
            record["stages"][stage.name] = {"run_dir": str(run_dir), "status": "failed"}
            record.update(status="failed", failed_stage=stage.name, error=f"{type(e).__name__}: {e}",
                          traceback=traceback.format_exc(), seconds=round(time.time() - started, 1))
            atomic_write_json(home / "cell.json", record)
            log.error("ablate %s: cell %s failed in %s: %s", spec.name, cell.name, stage.name, record["error"])
            return record
        record["stages"][stage.name] = {"run_dir": str(run_dir), "status": "done"}
    record.update(status="done", seconds=round(time.time() - started, 1))
    atomic_write_json(home / "cell.json", record)
    return record


def _run_stage(command: str, overrides: list[str]) -> None:
    if command == "train":
        from nlpx.config import compose
        from nlpx.recipes.train import train

        resume = [o for o in overrides if o.startswith("resume=")]
        train(compose(resume or overrides), overrides)
    elif command == "eval sts":
        from nlpx.recipes.eval_sts import eval_sts

        eval_sts(overrides)
    elif command == "eval mlm":
        from nlpx.recipes.eval_mlm import eval_mlm

        eval_mlm(overrides)
    else:
        from nlpx.recipes.eval_benchmark import eval_glue

        eval_glue(overrides)


class StageProcessError(RuntimeError):
    pass


def _run_stage_process(command: str, overrides: list[str], log_path: Path) -> None:
    """`nlpx train OVERRIDES` in a child process, its output in log_path (see the module doc)."""
    import os
    import subprocess
    import sys

    log_path.parent.mkdir(parents=True, exist_ok=True)
    # the child is rank 0 of its own DDP group: no rank or run id inherited from this process
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                        "NLPX_RUN_ID")}
    with open(log_path, "w") as out:
        code = subprocess.run([sys.executable, "-m", "nlpx.cli", command, *overrides], stdout=out,
                              stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise StageProcessError(f"nlpx {command} exited with {code}: {tail[0]} (log: {log_path})")


def run(spec: Spec, size: str, extra: list[str], cells: list[Cell], root: Path,
        launcher: list[str] | None = None) -> list[dict]:
    """Every cell not done yet, through a Hydra launcher; the records of all cells (plan order).

    `launcher` are Hydra overrides (hydra/launcher=joblib, hydra.launcher.n_jobs=2, ...); none:
    Hydra's basic launcher, the cells one after the other in this process."""
    write_plan(spec, size, extra, cells, root)
    pending = []
    for i, cell in enumerate(cells):
        done = status(cell)
        if done and done.get("status") == "done":
            log.info("ablate %s: %s done before (%s)", spec.name, cell.name, cell_home(cell))
        else:
            pending.append(i)
    if pending:
        launch(root, pending, list(launcher or []))
    return [status(cell) or {"arm": cell.arm, "seed": cell.seed, "key": cell.key, "status": "not run"}
            for cell in cells]


def launch(root: Path, indices: list[int], launcher: list[str]) -> None:
    """Hydra multirun over the plan's cell indices: each job runs one cell (run_planned_cell).

    Hydra's compose API has no launchers, so this goes through a `@hydra.main` entry point, as
    `nlpx train -m` does; the job's own config is nlpx's (unused: the cell composes its stages)."""
    import sys

    import hydra

    from nlpx.config import conf_dir

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def _cell(cfg) -> None:
        run_planned_cell(Path(str(cfg.ablate_root)), int(cfg.ablate_cell))

    argv = sys.argv
    sys.argv = [argv[0], "--multirun", f"+ablate_root={root.resolve()}",
                "+ablate_cell=" + ",".join(map(str, indices)), f"hydra.sweep.dir={(root / 'hydra').resolve()}",
                "logger=none", *launcher]
    try:
        _cell()
    finally:
        sys.argv = argv


def run_planned_cell(root: Path, index: int) -> dict:
    """Cell `index` of root/plan.json (in a launcher's job, possibly another process or machine)."""
    from nlpx.ablate.spec import load

    plan = json.loads((root / "plan.json").read_text())
    c = plan["cells"][index]
    cell = Cell(c["arm"], int(c["seed"]), {k: list(v) for k, v in c["stages"].items()}, c["key"],
                {k: Path(v) for k, v in c["run_dirs"].items()})
    return run_cell(load(plan["spec"]), cell)
