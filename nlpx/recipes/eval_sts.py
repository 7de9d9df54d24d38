"""`nlpx eval sts`: semantic textual similarity of a checkpoint's sentence vectors, no training.

Each sentence of a scored pair is encoded (model.pooling: see nlpx.embeddings.pooling), the pair
is scored by the cosine of its two vectors, and the scores are compared with the gold ones:
Spearman's and Pearson's correlation x100 (scipy's spearmanr and pearsonr), as SimCSE and
sentence-transformers' EmbeddingSimilarityEvaluator report them.

Data: STS-B from data.glue_dir (eval.split: dev; test only where its file has gold scores, which
the GLUE download's does not; none: skip it), plus every file in eval.files: a .tsv with a header
row or a .jsonl, each pair with two texts and a finite score (eval.columns names the columns).

Encoding: the distinct sentences of a data set, sorted by token length (longest first) and cut
into batches of eval.batch_size, each padded to its own longest member; inference mode (no
gradient), dropout off, float32 vectors.

runs/sts/<run_id>/
  config.yaml, overrides.yaml     the composed config (model.pooling included) and command lines
  results.json, results.md        per data set: pairs, Spearman, Pearson, examples/s; settings
  summary.json                    the compact result (`sts`) and the versions
  predictions/<data set>.tsv      sentence1, sentence2, gold score, cosine for every pair
When model.pretrained is an nlpx run directory, its summary.json gets the same `sts` entry (and
`sts_history`), as `nlpx eval glue` records `glue` there.

Every data file is read and checked, and the model loaded, before the run directory exists: a
malformed line or a bad option stops the command with one line and nothing written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nlpx.embeddings.encoder import (effective_pooling, evaluate_pairs, load_encoder, resolve_max_length,
                                     sentence_transformers_pooling)
from nlpx.embeddings.pairs import as_list, read_datasets
from nlpx.errors import UserError
from nlpx.eval.sts import compact, protocol_lines, table_rows, to_markdown
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")


def sts_overrides(overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        if key.split(".")[0] in ("optim", "budget", "trainer"):
            raise UserError(f"{o}: `nlpx eval sts` trains nothing; it reads no {key.split('.')[0]} settings")
        if key in ("eval", "objective", "task", "trick", "resume"):
            raise UserError(f"{o}: `nlpx eval sts` takes no {key} (it trains nothing)" if key != "eval" else
                            f"{o}: `nlpx eval sts` sets eval itself; change eval.* keys (eval.files=[...])")
        if key == "data" and value != "glue":
            raise UserError(f"{o}: `nlpx eval sts` reads STS-B with data=glue (data.glue_dir=PATH) and other "
                            "scored pairs from eval.files=[...]")
        out.append(o)
    if not any(o.startswith("experiment=") for o in out):
        out.append("experiment=sts")
    if not any(o.startswith("data=") for o in out):
        out.append("data=glue")
    return out + ["eval=sts"]


def _device(value) -> str:
    import torch

    value = str(value)
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UserError(f"eval.device={value}: not a device (valid: auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"eval.device={value}: no CUDA device here (eval.device=auto picks one when present)")
    return value


def eval_sts(overrides: list[str]) -> dict:
    import torch

    from nlpx.config import compose
    from nlpx.embeddings.pooling import check_pooling
    from nlpx.pretrained import resolve_pretrained

    quiet_libraries()
    overrides = list(overrides)
    cfg = compose(sts_overrides(overrides))
    ev = cfg.eval
    pooling = check_pooling(cfg.model.get("pooling"))
    batch_size = ev.batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"eval.batch_size={batch_size}: give a positive number of sentences")
    model_path = resolve_pretrained(cfg.model.get("pretrained"))
    if model_path is None:
        raise UserError("nlpx eval sts encodes with a trained model: give model.pretrained=PATH (an nlpx run "
                        "directory, a local HF checkpoint folder, or package:NAME)")
    # everything that can be wrong shows before anything is written
    datasets = read_datasets(ev, cfg.data.glue_dir)
    device = _device(ev.device)
    torch.manual_seed(int(cfg.seed))  # weights missing from the checkpoint: the same random init each time
    encoder = load_encoder(model_path, device)
    max_length, max_length_from = resolve_max_length(ev.max_length, encoder)
    used = effective_pooling(encoder, pooling)
    if used != pooling:
        log.warning("model.pooling=cls: %s has no trained pooler weights; its first token's hidden state is "
                    "used (as cls_before_pooler)", model_path)
    st_pooling = sentence_transformers_pooling(model_path)
    if st_pooling and st_pooling != pooling:
        log.warning("model.pooling=%s: %s was trained with %s pooling (sentence-transformers config)",
                    pooling, model_path, st_pooling)

    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        run_dir = run.run_dir
        rows = []
        for ds in datasets:
            log.info("STS %s: %d pairs", ds.name, len(ds.pairs))
            result = evaluate_pairs(encoder, ds.pairs, pooling=used, batch_size=batch_size, max_length=max_length)
            predictions = result.pop("predictions")
            pred_file = run_dir / "predictions" / f"{_file_name(ds.name)}.tsv"
            atomic_write_text(pred_file, "sentence1\tsentence2\tscore\tcosine\n" + "".join(
                f"{_cell(p.sentence1)}\t{_cell(p.sentence2)}\t{p.score!r}\t{c!r}\n"
                for p, c in zip(ds.pairs, predictions)))
            rows.append({"name": ds.name, "source": ds.source, **result, "predictions_file": str(pred_file)})
        settings = {"pooling": pooling, "pooling_used": used, "similarity": "cosine", "scale": "x100",
                    "max_length": max_length, "max_length_from": max_length_from, "batch_size": batch_size,
                    "device": device, "dtype": "float32", "split": str(ev.split),
                    "files": as_list(ev.files), "sentence_transformers_pooling": st_pooling}
        report = {"model": str(model_path), "pretrained": str(cfg.model.pretrained), "run_dir": str(run_dir),
                  "pooling": pooling, "datasets": rows, "settings": settings}
        report["protocol"] = protocol_lines(report)
        _write_outputs(report, run)
        record_in_pretraining_run(model_path, report)
        _log_report(run, report)
        return report


def _cell(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "data"


def _write_outputs(report: dict, run: Run) -> None:
    atomic_write_json(run.run_dir / "results.json", report)
    atomic_write_text(run.run_dir / "results.md", to_markdown(report))
    run.summarize({"run_dir": report["run_dir"], "model": report["model"], "pooling": report["pooling"],
                   "sts": compact(report)})


def record_in_pretraining_run(model_path: Path, report: dict) -> None:
    from nlpx.rundir import record_in_run

    entry = compact(report)
    record_in_run(model_path, "sts", entry, {"run_dir": entry["run_dir"], "pooling": entry["pooling"],
                                             "score": entry["score"]})


def _log_report(run: Run, report: dict) -> None:
    """sts/<data set>/{spearman,pearson,examples_per_s} scalars, and the table itself for W&B."""
    flat = {}
    for r in report["datasets"]:
        for k in ("spearman", "pearson", "examples_per_s"):
            flat[f"sts/{r['name']}/{k}"] = r[k]
    run.log_metrics(flat, step=0)
    run.log_table("sts/results", *table_rows(report))
