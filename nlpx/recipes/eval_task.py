"""`nlpx eval ner | qa`: fine-tune one task once per seed with the command's objective (tag, qa) and
report the seeds' spread (nlpx.eval.task_report).

runs/<command>/<run_id>/
  config.yaml, overrides.yaml       the evaluation's config
  seed<k>/                          one fine-tuning: metrics.jsonl, result.json, predictions/dev|test
  results.json, results.csv, results.md, summary.json

The table reports the task's labelled test split when it has one (the epoch kept on dev), else
dev. The task's files are read and encoded before the run directory exists, so a malformed file
stops the command with one line and nothing written. A finished seed leaves result.json;
`nlpx eval <command> resume=runs/<command>/<run_id>` runs only the seeds without it.
"""

from __future__ import annotations

import logging

from nlpx.config import FINETUNING_UNREAD, refuse_unread
from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")

FIXED = ("objective", "eval", "seed")
OBJECTIVE = {"ner": "tag", "qa": "qa"}  # what each command fine-tunes


def eval_ner(overrides: list[str]) -> dict:
    return eval_task("ner", overrides)


def eval_qa(overrides: list[str]) -> dict:
    return eval_task("qa", overrides)


def command_overrides(command: str, overrides: list[str]) -> list[str]:
    """The user's overrides plus eval=<command> and its objective; objective, eval and seed are the
    command's."""
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key in FIXED:
            hint = "; use eval.seeds=[0,1,2]" if key == "seed" else ""
            raise UserError(f"{o}: `nlpx eval {command}` sets {key} itself{hint}")
    out = list(overrides)
    if not any(o.startswith("experiment=") for o in out):
        out.append(f"experiment={command}")
    return out + [f"objective={OBJECTIVE[command]}", f"eval={command}"]


def eval_task(command: str, overrides: list[str]) -> dict:
    from nlpx.config import compose
    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.finetune.model import checkpoint_path
    from nlpx.recipes.eval_benchmark import resumed_overrides
    from nlpx.recipes.finetune import check_finetune_config, check_tricks, load_task_data, objective_unread

    quiet_libraries()
    overrides, resume_dir = resumed_overrides(command, list(overrides))
    refuse_unread(overrides, FINETUNING_UNREAD, f"nlpx eval {command}")
    user = command_overrides(command, overrides)
    cfg = compose(user)
    check_finetune_config(cfg)
    refuse_unread(overrides, objective_unread(cfg), f"nlpx eval {command}")
    seeds = [int(s) for s in cfg.eval.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"eval.seeds={list(cfg.eval.seeds)}: give one or more distinct seeds")
    model_path = checkpoint_path(cfg)
    tokenizer = load_tokenizer(model_path, key="model.pretrained")
    data = load_task_data(cfg, tokenizer, with_test=True)
    check_tricks(cfg, model_path, data)

    fresh = resume_dir is None
    run_dir = run_dir_for(cfg, existing=not fresh)
    with Run.start(cfg, overrides, run_dir, resume_step=None if fresh else -1, write_config=fresh, fresh=fresh,
                   resume=f"nlpx eval {command} resume={run_dir}") as run:
        from nlpx.eval.task_report import build_report, to_csv, to_markdown
        from nlpx.recipes.eval_benchmark import unit

        results = []
        for k, seed in enumerate(seeds, 1):
            log.info("%s %s, seed %d (%d/%d)", command, cfg.task.name, seed, k, len(seeds))
            results.append(unit(cfg, data, str(cfg.task.name), seed, run.run_dir / f"seed{seed}", model_path,
                                start=None, export=bool(cfg.task.export)))
        report = build_report(command, cfg, model_path, run.run_dir, data, results)
        atomic_write_json(run.run_dir / "results.json", report)
        atomic_write_text(run.run_dir / "results.csv", to_csv(report))
        atomic_write_text(run.run_dir / "results.md", to_markdown(report))
        run.summarize({"run_dir": str(run.run_dir), command: {k: report[k] for k in ("task", "split", "score",
                                                                                      "metrics")}})
        run.log_metrics({f"{command}/{report['task']}/{m}": a["mean"] for m, a in report["metrics"].items()}
                        | {f"{command}/{report['task']}/score": report["score"]["mean"]}, step=0)
        return report
