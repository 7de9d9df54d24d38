"""`nlpx ablate`: cells run in order, finished ones are skipped, an interrupted one resumes, a
failing one is recorded and does not stop the others; the smoke size end to end (its run in a
subprocess, the console script's own path)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from nlpx.ablate import command, runner
from tests.conftest import NLPX, REPO, SMALL, cli, cli_env


def spec_file(tmp_path: Path, cache_dir: Path, seeds: tuple[int, ...] = (0, 1)) -> Path:
    raw = {"description": "two arms, one of them broken", "stages": [{"name": "pretrain", "command": "train"}],
           "arms": {"mlm": ["objective=mlm"], "broken": ["data=text", f"data.paths=[{tmp_path / 'missing'}]"]},
           "seeds": list(seeds), "metrics": ["val/mlm_loss"],
           "sizes": {"smoke": [*SMALL, f"data.cache_dir={cache_dir}", "budget.max_steps=2",
                               "trainer.val_check_interval=2", "trainer.checkpoint_every_n_steps=1",
                               "trainer.limit_val_batches=1"],
                     "full": []}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_cells_run_resume_and_record_failures(tmp_path, cache_dir, monkeypatch):
    spec = str(spec_file(tmp_path, cache_dir))
    runs = f"runs_dir={tmp_path / 'runs'}"
    records, report = command.run(spec, "smoke", [runs])
    assert [(r["arm"], r["seed"], r["status"]) for r in records] == \
        [("mlm", 0, "done"), ("mlm", 1, "done"), ("broken", 0, "failed"), ("broken", 1, "failed")]
    assert "does not exist" in records[2]["error"] and records[2]["failed_stage"] == "pretrain"
    _, cells, root, _ = command.prepare(spec, "smoke", [runs])
    plan = json.loads((root / "plan.json").read_text())
    assert [c["key"] for c in plan["cells"]] == [c.key for c in cells]

    # a kill during mlm/seed1's run: its summary and cell record never got written
    killed = cells[1]
    (killed.run_dirs["pretrain"] / "summary.json").unlink()
    (runner.cell_home(killed) / "cell.json").unlink()
    calls = []
    real = runner._run_stage
    monkeypatch.setattr(runner, "_run_stage", lambda cmd, overrides: (calls.append(overrides), real(cmd, overrides)))
    again, _ = command.run(spec, "smoke", [runs])
    assert calls[0] == [f"resume={killed.run_dirs['pretrain']}"]  # resumed from its checkpoint
    assert len(calls) == 3  # mlm/seed0 skipped; the two failed cells tried again
    assert [r["status"] for r in again] == ["done", "done", "failed", "failed"]
    summary = json.loads((killed.run_dirs["pretrain"] / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["seed"] == 1
    runs_made = sorted(p.parent.parent.name for p in (root / "cells").rglob("config.yaml"))
    assert runs_made == sorted(f"seed{c.seed}-{c.key}" for c in cells[:2])  # no duplicate cell


@pytest.mark.slow
def test_list_dry_run_and_smoke_end_to_end(tmp_path, cache_dir, glue_dir, caplog):
    listed = cli("ablate", "--list", cache_dir=cache_dir)
    assert listed.returncode == 0
    assert [line for line in listed.stdout.splitlines() if not line.startswith(" ")] == \
        ["attention", "embeddings", "es_nes_gdes", "mask_ratio", "mask_replace", "nsp_vs_nonsp", "plm_vs_mlm", "tricks"]
    # one GLUE task a cell (a later override wins over the spec's three): the stage is the same code
    # (2 pretraining steps and 16 MRPC examples a cell: the stages and the report are the same code)
    args = ["ablate", "mask_ratio", "--size", "smoke", f"runs_dir={tmp_path}", f"glue:data.glue_dir={glue_dir}",
            "glue:eval.tasks=[mrpc]", "budget.max_steps=2", "trainer.val_check_interval=2",
            "glue:task.max_train_examples=16"]
    dry = cli(*args, "--dry-run", cache_dir=cache_dir)
    assert dry.returncode == 0, dry.stderr
    assert "3 arms x 3 seeds = 9 cells" in dry.stdout and not (tmp_path / "ablate").exists()

    out = subprocess.run([*NLPX, *args], cwd=REPO, env=cli_env(cache_dir), capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "9 of 9 cells done" in out.stdout
    root = tmp_path / "ablate" / "mask_ratio"
    records = [json.loads(p.read_text()) for p in sorted(root.rglob("cell.json"))]
    assert len(records) == 9 and all(r["status"] == "done" for r in records)
    for r in records:
        glue = json.loads((Path(r["stages"]["glue"]["run_dir"]) / "results.json").read_text())
        assert [t["task"] for t in glue["tasks"]] == ["mrpc"]
    # the report: one row per arm with n = 3 seeds, every file, the terminal table
    report = json.loads((root / "results.json").read_text())
    assert [r["arm"] for r in report["rows"]] == ["objective.masking.ratio=0.15", "objective.masking.ratio=0.3",
                                                  "objective.masking.ratio=0.4"]
    assert all(r["metrics"]["glue/score"]["n"] == 3 and r["metrics"]["val/mlm_loss"]["n"] == 3
               and r["metrics"]["val/common_mlm_loss"]["n"] == 3
               for r in report["rows"])
    assert {"results.md", "results.csv", "results.tex", "curve_val_common_mlm_loss.png", "bars_glue_score.png"} <= \
        {p.name for p in root.iterdir()}
    assert "mask_ratio (smoke)" in out.stdout

    caplog.set_level("INFO", logger="nlpx")
    again = cli(*args, cache_dir=cache_dir)
    assert again.returncode == 0 and "9 of 9 cells done" in again.stdout
    said = [r.getMessage() for r in caplog.records]
    assert sum("done before" in m for m in said) == 9 and not any(" pretrain model=" in m for m in said)  # nothing ran again

    (root / "results.md").unlink()
    caplog.clear()
    rebuilt = cli("ablate", "mask_ratio", "--report", f"runs_dir={tmp_path}", cache_dir=cache_dir)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (root / "results.md").is_file() and not caplog.records  # it ran nothing


def test_cells_log_to_wandb_grouped_by_experiment_and_arm(tmp_path):
    from nlpx.ablate.spec import Cell, Spec, Stage

    spec = Spec(name="mask_ratio", path=tmp_path / "s.yaml", description="", stages=(Stage("pretrain", "train"),),
                base={}, arms={}, baseline="", seeds=(0,), metrics=("x",), sizes={})
    cell = Cell("objective.masking.ratio=0.3", 0, {"pretrain": ["model=bert", "seed=0"]},
                run_dirs={"pretrain": tmp_path / "cells" / "a" / "seed0-k" / "pretrain"})
    assert runner.stage_overrides(spec, cell, spec.stages[0])[2:4] == \
        ["logger.group=mask_ratio", "logger.job_type=objective.masking.ratio-0.3"]
    cell.stages["pretrain"].insert(0, "logger=none")
    assert not any(o.startswith("logger.") for o in runner.stage_overrides(spec, cell, spec.stages[0]))


def test_joblib_launcher_runs_cells_in_parallel_processes(tmp_path, cache_dir):
    spec = str(spec_file(tmp_path, cache_dir))
    records, report = command.run(spec, "smoke", [f"runs_dir={tmp_path / 'runs'}", "hydra/launcher=joblib",
                                                  "hydra.launcher.n_jobs=2"])
    assert [(r["arm"], r["seed"], r["status"]) for r in records] == \
        [("mlm", 0, "done"), ("mlm", 1, "done"), ("broken", 0, "failed"), ("broken", 1, "failed")]
    row = next(r for r in report["rows"] if r["arm"] == "mlm")
    assert row["baseline"] and row["metrics"]["val/mlm_loss"]["n"] == 2 and math.isnan(row["metrics"]["val/mlm_loss"]["p"])


def test_a_failed_stage_starts_again_with_the_current_settings(tmp_path, monkeypatch):
    from nlpx.ablate.spec import Cell, Spec, Stage

    spec = Spec(name="e", path=tmp_path / "s.yaml", description="", stages=(Stage("pretrain", "train"),),
                base={}, arms={}, baseline="", seeds=(0,), metrics=("x",), sizes={})
    run_dir = tmp_path / "cells" / "a" / "seed0-k" / "pretrain"
    cell = Cell("a", 0, {"pretrain": ["logger=none", "seed=0"]}, "k", {"pretrain": run_dir})
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("logger: {name: wandb}\n")  # what the failed attempt ran with
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run_dir.parent / "cell.json").write_text(json.dumps({"status": "failed", "failed_stage": "pretrain"}))
    calls = []
    monkeypatch.setattr(runner, "_run_stage", lambda cmd, overrides: calls.append((run_dir.exists(), overrides)))
    assert runner.run_cell(spec, cell)["status"] == "done"
    (existed, overrides), = calls
    assert not existed and overrides[:2] == ["logger=none", "seed=0"] and not overrides[0].startswith("resume=")
    # an interrupted stage (no failure recorded) resumes instead
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("x: 1\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run_dir.parent / "cell.json").unlink()
    calls.clear()
    runner.run_cell(spec, cell)
    assert calls == [(True, [f"resume={run_dir}"])]


@pytest.mark.slow
def test_ddp_pretraining_inside_a_cell_runs_as_its_own_process(tmp_path, cache_dir, monkeypatch):
    """Lightning re-runs the fitting process's command line for rank 1: that must be the stage's
    `nlpx train`, not `nlpx ablate` (which would plan and launch every cell again). The cell's
    stage is `nlpx train trainer=ddp` in a process of its own, so this is also the DDP test of
    `nlpx train` (gloo on CPU, both ranks in one run directory)."""
    monkeypatch.setenv("NLPX_CACHE", str(cache_dir))
    spec = str(spec_file(tmp_path, cache_dir, seeds=(0,)))
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    records, _ = command.run(spec, "smoke", [f"runs_dir={tmp_path / 'runs'}", *ddp])
    assert [r["status"] for r in records] == ["done", "failed"]
    for record in records[:1]:
        run_dir = Path(record["stages"]["pretrain"]["run_dir"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["steps"] == 2 and summary["tokens_seen"] == 2 * 2 * 8 * 64  # 2 steps x 2 ranks
        assert (run_dir.parent / "pretrain.log").is_file()
    # one plan, one run per cell: rank 1 did not start an ablation of its own
    assert len(list((tmp_path / "runs").rglob("plan.json"))) == 1
    assert [p.parent.name for p in (tmp_path / "runs").rglob("summary.json")] == ["pretrain"]
    assert "exited with 2" in records[1]["error"] and "does not exist" in records[1]["error"]


def test_an_eval_sts_stage_scores_each_pretrained_cell(tmp_path, cache_dir, glue_dir):
    raw = {"description": "MLM pretraining, then STS-B dev of its sentence vectors",
           "stages": [{"name": "pretrain", "command": "train"},
                      {"name": "sts", "command": "eval sts",
                       "overrides": ["model.pretrained={pretrain}", f"data.glue_dir={glue_dir}", "logger=none"]}],
           "arms": {"mean": [], "cls": {"sts": ["model.pooling=cls_before_pooler"]}},
           "seeds": [0], "metrics": ["sts/stsb-dev", "sts/stsb-dev/pearson"],
           "sizes": {"smoke": {"pretrain": [*SMALL, f"data.cache_dir={cache_dir}", "budget.max_steps=2",
                                            "trainer.val_check_interval=2", "trainer.limit_val_batches=1"]},
                     "full": []}}
    spec = tmp_path / "sts.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    runs = f"runs_dir={tmp_path / 'runs'}"
    records, report = command.run(str(spec), "smoke", [runs])
    assert [(r["arm"], r["status"]) for r in records] == [("mean", "done"), ("cls", "done")]
    _, cells, root, _ = command.prepare(str(spec), "smoke", [runs])
    rows = {r["arm"]: r for r in json.loads((root / "results.json").read_text())["rows"]}
    for cell in cells:
        results = json.loads((cell.run_dirs["sts"] / "results.json").read_text())
        (stsb,) = results["datasets"]
        assert results["pooling"] == ("mean" if cell.arm == "mean" else "cls_before_pooler")
        assert rows[cell.arm]["metrics"]["sts/stsb-dev"]["mean"] == stsb["spearman"]
        assert rows[cell.arm]["metrics"]["sts/stsb-dev/pearson"]["mean"] == stsb["pearson"]
    assert rows["mean"]["metrics"]["sts/stsb-dev"]["mean"] != rows["cls"]["metrics"]["sts/stsb-dev"]["mean"]
    # an interrupted eval sts (no results.json) starts again from scratch; finished cells are skipped
    broken = cells[1].run_dirs["sts"]
    (broken / "results.json").unlink()
    (runner.cell_home(cells[1]) / "cell.json").unlink()
    plan = command.prepare(str(spec), "smoke", [runs])[0]
    assert runner.stage_overrides(plan, cells[1], plan.stages[1])[-1] == f"run_id={broken.name}"  # no resume=
    assert not broken.exists()
