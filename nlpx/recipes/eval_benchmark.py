"""`nlpx eval glue | clue | fewclue`: fine-tune a checkpoint on every task x seed of a benchmark
(nlpx.eval.benchmarks) and score it: on dev (GLUE, CLUE) or on FewCLUE's labelled test_public
with the epoch chosen on dev_few_all.

runs/<benchmark>/<run_id>/
  config.yaml, overrides.yaml       the eval's config (tasks, seeds, data.<benchmark>_dir, task.* overrides)
  <task>/seed<k>/                   one fine-tuning: metrics.jsonl, result.json, predictions/dev|test
  results.json, results.csv, results.md, summary.json
  submission/*, submission.zip      test predictions in the benchmark server's format

Every task's data is read and encoded before the run directory exists, so a malformed file
stops the command with one line and nothing written. A finished task x seed leaves result.json;
`nlpx eval <benchmark> resume=runs/<benchmark>/<run_id>` runs only the ones without it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from nlpx.config import FINETUNING_UNREAD, refuse_unread
from nlpx.errors import UserError
from nlpx.eval.benchmarks import Benchmark, get_benchmark, majority_score
from nlpx.eval.glue_search import config_name, configurations, pick, resolve_space
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")

FROM_MNLI = ("rte", "mrpc", "stsb")


def benchmark_overrides(bench: Benchmark, overrides: list[str]) -> list[str]:
    """The user's overrides plus what the command fixes: objective=classify, eval=<benchmark>
    and, for CLUE and FewCLUE, data=<benchmark> (GLUE's data=glue is objective=classify's own)."""
    fixed = ["objective=classify", f"eval={bench.name}"] + ([f"data={bench.name}"] if bench.fixes_data else [])
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key in ("task", "objective", "eval", "seed") or (key == "data" and bench.fixes_data):
            valid = {"task": f"eval.tasks=[{','.join(bench.tasks[:2])},...]", "seed": "eval.seeds=[0,1,2]"}.get(key, "")
            raise UserError(f"{o}: `nlpx eval {bench.name}` sets {key} itself" + (f"; use {valid}" if valid else ""))
    out = list(overrides)
    if not any(o.startswith("experiment=") for o in out):
        out.append(f"experiment={bench.name}")
    return out + fixed


def glue_overrides(overrides: list[str]) -> list[str]:
    return benchmark_overrides(get_benchmark("glue"), overrides)


def resumed_overrides(command: str, overrides: list[str]) -> tuple[list[str], Path | None]:
    """resume=RUN_DIR: the eval's own first command line, with the same run id (command: glue, ner, ...)."""
    resume = [o for o in overrides if o.startswith("resume=")]
    if not resume:
        return overrides, None
    if len(overrides) > 1:
        raise UserError(f"resume: `nlpx eval {command} resume=RUN_DIR` takes no other overrides "
                        "(the run's own settings are reused)")
    run_dir = Path(resume[0].split("=", 1)[1])
    history = run_dir / "overrides.yaml"
    if not (run_dir / "config.yaml").is_file() or not history.is_file():
        raise UserError(f"{resume[0]}: not an nlpx eval {command} run directory (no config.yaml)")
    first = [str(o) for o in OmegaConf.to_container(OmegaConf.load(history))[0]]
    first = [o for o in first if not o.startswith(("run_id=", "runs_dir=", "experiment="))]
    return first + [f"run_id={run_dir.name}", f"runs_dir={run_dir.parent.parent}",
                    f"experiment={run_dir.parent.name}"], run_dir


def eval_glue(overrides: list[str]) -> dict:
    return eval_benchmark("glue", overrides)


def eval_clue(overrides: list[str]) -> dict:
    return eval_benchmark("clue", overrides)


def eval_fewclue(overrides: list[str]) -> dict:
    return eval_benchmark("fewclue", overrides)


def eval_benchmark(name: str, overrides: list[str]) -> dict:
    from nlpx.config import compose
    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.finetune.model import checkpoint_path
    from nlpx.recipes.finetune import check_finetune_config, load_task_data

    bench = get_benchmark(name)
    quiet_libraries()
    overrides, resume_dir = resumed_overrides(bench.name, list(overrides))
    refuse_unread(overrides, FINETUNING_UNREAD, f"nlpx eval {bench.name}")
    user = benchmark_overrides(bench, overrides)
    # task.* keys exist once a task is chosen: they are checked in each task's config below
    cfg = compose([o for o in user if not o.lstrip("+~").startswith("task.")])
    ev = cfg.eval
    if ev.mode != "finetune":
        from nlpx.recipes.eval_zeroshot import eval_zeroshot

        if resume_dir is not None:
            raise UserError(f"resume={resume_dir}: a zero-shot evaluation trains nothing and has nothing to "
                            f"resume; run it again (nlpx eval {bench.name} eval.mode={ev.mode} ...)")
        return eval_zeroshot(bench, cfg, overrides)
    from nlpx.recipes.eval_zeroshot import FINETUNE_UNREAD

    refuse_unread(overrides, FINETUNE_UNREAD, f"nlpx eval {bench.name}")
    data_dir = bench.folder(cfg)
    if not data_dir.is_dir():
        raise UserError(f"data.{bench.data_key}={data_dir}: no such folder (give the {bench.title} data folder, "
                        f"{bench.folder_hint})")
    tasks = [str(t) for t in ev.tasks] or list(bench.tasks)
    for t in tasks:
        if t not in bench.tasks:
            bench.spec(t)  # an unknown name: the valid ones
            raise UserError(f"eval.tasks: {t} is not fine-tuned on its own (valid: {', '.join(bench.tasks)})")
    seeds = [int(s) for s in ev.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"eval.seeds={list(ev.seeds)}: give one or more distinct seeds")
    if ev.submission_seed != "best" and int(ev.submission_seed) not in seeds:
        raise UserError(f"eval.submission_seed={ev.submission_seed}: not one of eval.seeds (or 'best')")
    model_path = checkpoint_path(cfg)
    tokenizer = load_tokenizer(model_path, key="model.pretrained")
    space, space_from = resolve_space(ev, model_path, overrides)
    configs = configurations(space)  # [[]] without a search

    # everything that can be wrong with the data shows before anything is written
    task_cfgs, data, status, majority = {}, {}, {}, {}
    for t in tasks:
        present = bench.present(data_dir, t)
        if not present["dev"]:
            status[t] = "no dev data" if present["train"] else "no data"
            continue
        if not present["train"]:
            status[t] = "no train data"
            log.warning("%s %s: dev data present but no training split under %s: not fine-tuned", bench.title, t,
                        data_dir)
            continue
        task_cfgs[t] = {}
        loaded = {}  # a search over task.max_length (say) reads the data again; over optim.lr it does not
        for config in configs:
            task_cfg = compose(user + [f"task={bench.name}/{t}"] + config)
            check_finetune_config(task_cfg)
            task_cfgs[t][config_name(config)] = task_cfg
            key = json.dumps([OmegaConf.to_container(task_cfg.task, resolve=True),
                              OmegaConf.to_container(task_cfg.data, resolve=True)], sort_keys=True, default=str)
            if key not in loaded:
                # FewCLUE reports its labelled test split: read whether or not submission files are wanted
                loaded[key] = load_task_data(task_cfg, tokenizer,
                                             with_test=bool(ev.predict_test) or bench.reported == "test")
            data.setdefault(t, {})[config_name(config)] = loaded[key]
        first = next(iter(data[t].values()))
        if bench.reported == "test" and not first.test:
            raise UserError(f"data.{bench.data_key}={data_dir}: {bench.title} {t} reports its labelled test split "
                            f"(looked for {', '.join(first.spec.splits['test'])}); it is missing")
        majority[t] = majority_score(first.spec, first.train.encoded.labels,
                                     {s.score_as: s.encoded.labels for s in bench.reported_splits(first)})
        status[t] = "ok"
    if not task_cfgs:
        raise UserError(f"data.{bench.data_key}={data_dir}: no {bench.title} task with both train and dev data "
                        f"({'; '.join(f'{t}: {s}' for t, s in status.items())})")
    from_mnli = bool(ev.get("from_mnli")) and "mnli" in task_cfgs
    if ev.get("from_mnli") and not from_mnli:
        log.warning("eval.from_mnli: no MNLI fine-tuning in this run; RTE, MRPC and STS-B start "
                    "from the pretrained model")
    order = sorted(task_cfgs, key=lambda t: (not (from_mnli and t == "mnli"), tasks.index(t)))

    resumed = resume_dir is not None
    # a resumed evaluation keeps its config files and logs afresh
    run_dir = run_dir_for(cfg, existing=resumed)
    with Run.start(cfg, overrides, run_dir, resume_step=-1 if resumed else None, write_config=not resumed,
                   fresh=not resumed, resume=f"nlpx eval {bench.name} resume={run_dir}") as run:
        run_dir = run.run_dir
        results: dict[str, dict[str, list[dict]]] = {}
        winners: dict[str, str] = {}
        n_units, k = len(order) * len(configs) * len(seeds), 0
        for t in order:
            for name, task_cfg in task_cfgs[t].items():
                # one configuration's seeds side by side; without a search, the task's folder itself
                home = _unit_home(run_dir, t, name, space)
                for seed in seeds:
                    k += 1
                    log.info("%s %s%s, seed %d (%d/%d)", bench.title, t, f" {name}" if space else "", seed, k,
                             n_units)
                    start = None
                    if from_mnli and t in FROM_MNLI:
                        start = _unit_home(run_dir, "mnli", winners["mnli"], space) / f"seed{seed}" / "hf"
                    results.setdefault(t, {}).setdefault(name, []).append(
                        unit(task_cfg, data[t][name], t, seed, home / f"seed{seed}", model_path, start=start,
                              export=from_mnli and t == "mnli"))
            winners[t], _ = pick(results[t])
        search = {"space": space, "from": space_from, "fine_tunings": n_units} if space else None
        report = _report(bench, cfg, model_path, run_dir, tasks, status, results, winners, task_cfgs, from_mnli,
                         majority, search)
        _write_outputs(bench, report, {t: results[t][winners[t]] for t in results}, run)
        _record_in_pretraining_run(model_path, report)
        _log_report(run, report)
        return report


def _unit_home(run_dir: Path, task: str, name: str, space: dict) -> Path:
    return run_dir / task / name if space else run_dir / task


def unit(cfg, data, task: str, seed: int, unit_dir: Path, model_path: Path, *, start: Path | None,
          export: bool) -> dict:
    from nlpx.recipes.finetune import finetune
    from nlpx.run.loggers import JsonlLogger

    done = unit_dir / "result.json"
    if done.is_file():
        log.info("  done before: %s", done)
        return json.loads(done.read_text())
    shutil.rmtree(unit_dir, ignore_errors=True)  # an interrupted unit starts over
    unit_dir.mkdir(parents=True)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    cfg.seed = seed
    cfg.task.export = export  # only MNLI's weights are needed again (eval.from_mnli)
    # a unit logs only to its own metrics.jsonl; the evaluation's loggers get the table
    with Run(cfg, unit_dir, [JsonlLogger(unit_dir / "metrics.jsonl")], fresh=False) as unit:
        return finetune(cfg, data, model_path=start or model_path, run=unit, new_head=start is not None,
                        predict_test=bool(cfg.eval.predict_test), strict_tricks=False)


def _reported(bench: Benchmark, t: str, results: list[dict]) -> list[dict]:
    """Each seed's result with the metrics the table reports: FewCLUE's test_public ones (the
    epoch was kept for its dev score, kept under dev_score)."""
    if bench.reported == "dev":
        return results
    spec = bench.spec(t)
    return [{**r, "metrics": r["test_metrics"]["test"], "score": spec.score(r["test_metrics"]["test"]),
             "dev_score": r["score"]} for r in results]


def _report(bench, cfg, model_path, run_dir, tasks, status, results, winners, task_cfgs, from_mnli, majority,
            search) -> dict:
    from nlpx.eval.glue_report import benchmark_row, task_row

    rows = []
    for t in tasks:
        if t not in results:
            rows.append({"task": t, "status": status[t]})
            continue
        winner = winners[t]
        row = task_row(t, _reported(bench, t, results[t][winner]))
        if bench.reported != "dev":
            row["dev_score"] = task_row(t, results[t][winner])["score"]
        row["majority"] = majority[t]
        if search:
            row["search"] = {"winner": winner, "configs": pick(results[t])[1]}
        rows.append(row)
    # the settings each task was reported with: its winning configuration's
    chosen = {t: task_cfgs[t][winners[t]] for t in results}
    selects = {str(c.task.select) for c in chosen.values()}
    settings = {"split": "dev" if bench.reported == "dev" else "test_public (epoch kept on dev_few_all)",
                "seeds": [int(s) for s in cfg.eval.seeds],
                "select": selects.pop() if len(selects) == 1 else "mixed",
                "epochs": {t: int(c.budget.max_epochs) for t, c in chosen.items()},
                "max_steps": {t: c.budget.max_steps for t, c in chosen.items() if c.budget.max_steps},
                "max_train_examples": {t: c.task.max_train_examples for t, c in chosen.items()
                                       if c.task.max_train_examples},
                # the report's names of the settings, read from their homes (optim, task)
                "hyperparameters": {t: {"lr": c.optim.lr, "batch_size": c.task.batch_size,
                                        "bucket_window": c.task.bucket_window,
                                        "max_length": c.task.max_length, "warmup_ratio": c.optim.warmup,
                                        "weight_decay": c.optim.weight_decay} for t, c in chosen.items()},
                "from_mnli": from_mnli, "submission_seed": str(cfg.eval.submission_seed),
                "search": search,
                "fine_tunings": sum(len(r) for per_config in results.values() for r in per_config.values())}
    return {"benchmark": bench.name, "model": str(model_path), "run_dir": str(run_dir),
            bench.data_key: str(cfg.data[bench.data_key]), "pooling": str(cfg.model.get("pooling")),
            "tasks": rows, bench.name: benchmark_row(bench, rows), "settings": settings}


def _write_outputs(bench: Benchmark, report: dict, results: dict[str, list[dict]], run: Run) -> None:
    from nlpx.eval.glue_report import protocol_lines, to_csv, to_markdown

    run_dir = run.run_dir
    submitted = {}
    sub_dir = run_dir / "submission"
    shutil.rmtree(sub_dir, ignore_errors=True)
    for task, per_seed in results.items():
        with_test = [r for r in per_seed if r["test_predictions"]]
        if not with_test:
            continue
        choice = report["settings"]["submission_seed"]
        r = (max(with_test, key=lambda r: r["score"] if r["score"] == r["score"] else float("-inf"))
             if choice == "best" else next(r for r in with_test if r["seed"] == int(choice)))
        for name, path in r["test_predictions"].items():
            sub_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, sub_dir / name)
            submitted[name] = {"task": task, "seed": r["seed"]}
    report["submission"] = None
    if submitted:
        report["submission"] = {"zip": str(bench.pack(sub_dir, submitted, run_dir / "submission.zip")),
                                "files": submitted}
    report["protocol"] = protocol_lines(report["settings"], bench)
    atomic_write_json(run_dir / "results.json", report)
    atomic_write_text(run_dir / "results.csv", to_csv(report))
    atomic_write_text(run_dir / "results.md", to_markdown(report))
    run.summarize({"pooling": report["pooling"], **_compact(report)})


def _compact(report: dict) -> dict:
    """What a pretraining run's summary keeps of a benchmark evaluation."""
    name = report["benchmark"]
    g = report[name]
    return {name: {
        "run_dir": report["run_dir"],
        "score": g["score"] if g else None, "covered": g["covered"] if g else [],
        "tasks": {r["task"]: ({"score": r["score"], "metrics": {m: a["mean"] for m, a in r["metrics"].items()}}
                              if r["status"] == "ok" else {"status": r["status"]}) for r in report["tasks"]},
        "settings": report["settings"]}}


def _record_in_pretraining_run(model_path: Path, report: dict) -> None:
    from nlpx.rundir import record_in_run

    compact = _compact(report)[report["benchmark"]]
    record_in_run(model_path, report["benchmark"], compact,
                  {"run_dir": compact["run_dir"], "score": compact["score"], "covered": compact["covered"]})


def _log_report(run: Run, report: dict) -> None:
    """The per-task numbers as <benchmark>/<task>/<metric> scalars, and the table itself for W&B."""
    from nlpx.eval.glue_report import table_rows

    name, flat = report["benchmark"], {}
    for r in report["tasks"]:
        if r["status"] != "ok":
            continue
        for m, agg in r["metrics"].items():
            flat[f"{name}/{r['task']}/{m}"] = agg["mean"]
            flat[f"{name}/{r['task']}/{m}_std"] = agg["std"]
        flat[f"{name}/{r['task']}/score"] = r["score"]["mean"]
    if report[name]:
        flat[f"{name}/score"] = report[name]["score"]["mean"]
    run.log_metrics(flat, step=0)
    run.log_table(f"{name}/results", *table_rows(report))
