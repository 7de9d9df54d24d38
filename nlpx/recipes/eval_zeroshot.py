"""`nlpx eval glue | clue | fewclue eval.mode=zeroshot_nsp | zeroshot_mlm`: score each task's
reported split (GLUE and CLUE: dev; FewCLUE: test_public) with the checkpoint's own NSP head
(NSP-BERT) or MLM head (PET), prompts from the task tables (nlpx.eval.prompts). No training, no
selection, no seeds.

runs/<benchmark>/<run_id>/
  config.yaml, overrides.yaml
  <task>/<split>.predictions.jsonl   per example: id, label, prediction, the candidates' scores
  results.json, results.csv, results.md, summary.json

The data and the model's head are read before the run directory exists: a missing head or a
malformed file is one line and exit 2 with nothing written.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run

log = logging.getLogger("nlpx")

# what a zero-shot evaluation does not read (it trains nothing): given, each is an error
ZEROSHOT_UNREAD = {key: "{command} trains nothing (eval.mode=finetune fine-tunes)" for key in (
    "optim", "budget", "task", "trick", "trainer", "eval.seeds", "eval.search", "eval.search_spaces",
    "eval.submission_seed", "eval.predict_test", "eval.from_mnli", "resume")}
# what fine-tuning does not read
FINETUNE_UNREAD = {"eval.max_length": "fine-tuning cuts inputs at task.max_length (zero-shot modes read this)",
                   "eval.batch_size": "fine-tuning batches task.batch_size (zero-shot modes read this)"}


def eval_zeroshot(bench, cfg, overrides: list[str]) -> dict:
    from nlpx.config import refuse_unread
    from nlpx.eval.benchmarks import chance_and_majority
    from nlpx.eval.prompts import prompts_of
    from nlpx.eval.zeroshot import load_head, score
    from nlpx.finetune.model import checkpoint_path

    mode = str(cfg.eval.mode)
    head = mode.removeprefix("zeroshot_")
    refuse_unread(overrides, ZEROSHOT_UNREAD, f"nlpx eval {bench.name} eval.mode={mode}")
    folder = bench.folder(cfg)
    if not folder.is_dir():
        raise UserError(f"data.{bench.data_key}={folder}: no such folder (give the {bench.title} data folder, "
                        f"{bench.folder_hint})")
    asked = [str(t) for t in cfg.eval.tasks]
    tasks = asked or list(bench.tasks)
    specs, status, data = {}, {}, {}
    for t in tasks:
        spec = bench.spec(t)
        if not getattr(spec, "prompts", None):
            if asked:
                prompts_of(spec, f"eval.mode={mode}")  # the task has none: one line, exit 2
            status[t] = "no prompts"
            continue
        present = bench.present(folder, t)
        splits = bench.reported_names(t)
        if not all(s in present["dev" if s.startswith("dev") else "test"] for s in splits):
            status[t] = "no data"
            continue
        specs[t] = bench.resolved(spec, folder)
        prompts_of(specs[t], f"eval.mode={mode}")
        data[t] = {s: (score_as, bench.read(specs[t], folder, s)) for s, score_as in splits.items()}
        status[t] = "ok"
    if not specs:
        raise UserError(f"data.{bench.data_key}={folder}: no {bench.title} task with prompts and data "
                        f"({'; '.join(f'{t}: {s}' for t, s in status.items())})")
    model_path = checkpoint_path(cfg)
    model, tokenizer = load_head(model_path, head)

    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        rows = []
        for t in tasks:
            if status[t] != "ok":
                rows.append({"task": t, "status": status[t]})
                continue
            spec, per_split = specs[t], {}
            log.info("%s %s: %s on %s", bench.title, t, mode, ", ".join(data[t]))
            for split, (score_as, examples) in data[t].items():
                scored = score(spec, examples, model, tokenizer, head, max_length=int(cfg.eval.max_length),
                               batch_size=int(cfg.eval.batch_size))
                per_split[score_as] = spec.split_metrics(score_as, scored.predictions, [e.label for e in examples])
                _write_predictions(run.run_dir / t / f"{split}.predictions.jsonl", spec, examples, scored)
            metrics = spec.join_metrics(per_split)
            prompts = prompts_of(spec, "")
            rows.append({"task": t, "status": "ok", "metrics": metrics, "score": spec.score(metrics),
                         **chance_and_majority(spec, [e for _, examples in data[t].values() for e in examples]),
                         "examples": sum(len(e) for _, e in data[t].values()),
                         "prompt": {"nsp": prompts.nsp, "mlm": prompts.mlm, "words": prompts.words,
                                    "source": prompts.source}})
        scored = [r for r in rows if r["status"] == "ok"]
        report = {"benchmark": bench.name, "mode": mode, "model": str(model_path), "run_dir": str(run.run_dir),
                  bench.data_key: str(folder), "split": "dev" if bench.reported == "dev" else "test_public",
                  "tasks": rows,
                  "mean": {"score": float(np.mean([r["score"] for r in scored])),
                           "chance": float(np.mean([r["chance"] for r in scored])),
                           "covered": [r["task"] for r in scored]}}
        from nlpx.eval.zeroshot_report import to_csv, to_markdown

        atomic_write_json(run.run_dir / "results.json", report)
        atomic_write_text(run.run_dir / "results.csv", to_csv(report))
        atomic_write_text(run.run_dir / "results.md", to_markdown(report))
        run.log_metrics({**{f"{bench.name}/{r['task']}/{m}": v for r in scored for m, v in r["metrics"].items()},
                         f"{bench.name}/score": report["mean"]["score"]}, step=0)
        run.summarize({"mode": mode, bench.name: {"score": report["mean"]["score"],
                                                  "tasks": {r["task"]: r["score"] for r in scored}}})
        return report


def _write_predictions(path: Path, spec, examples, scored) -> None:
    from nlpx.eval.prompts import kind_of

    choice = kind_of(spec) == "choice"
    name = (lambda k: k) if choice else (lambda k: spec.labels[k])
    lines = [json.dumps({"id": e.index, "label": name(e.label), "prediction": name(p),
                         "scores": [round(x, 6) for x in s]}, ensure_ascii=False) + "\n"
             for e, p, s in zip(examples, scored.predictions, scored.scores)]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(lines))
