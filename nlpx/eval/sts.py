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

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text

log = logging.getLogger("nlpx")

SPLITS = ("dev", "test", "none")
FORMATS = (".tsv", ".jsonl")
ROLES = ("sentence1", "sentence2", "score")
NO_SPLIT = ("none", "null", "")


@dataclass(frozen=True)
class Pair:
    sentence1: str
    sentence2: str
    score: float


@dataclass
class PairSet:
    name: str    # the row name: stsb-dev, or the file's stem
    source: str  # the file read
    pairs: list[Pair]


# -- reading ------------------------------------------------------------------------------------

def read_pairs(path: str | Path, columns: dict[str, str] | None = None) -> list[Pair]:
    """The scored pairs of a .tsv (header row naming the columns) or .jsonl file (one object a line).

    Any malformed line is a UserError naming file:line and the column or key; blank lines of a
    jsonl file are skipped.
    """
    columns = {**{r: r for r in ROLES}, **(columns or {})}
    path = Path(path)
    if not path.is_file():
        raise UserError(f"eval.files: {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"eval.files: {path}: unknown format '{suffix}' (give a .tsv file with a header row "
                        f"or a .jsonl file, with {_needs(columns)})")
    pairs = _read_jsonl(path, columns) if suffix == ".jsonl" else _read_tsv(path, columns)
    if len(pairs) < 2:
        raise UserError(f"{path}: {len(pairs)} scored pair(s); a correlation needs at least 2")
    return pairs


def _needs(columns: dict[str, str]) -> str:
    return f"{', '.join(repr(columns[r]) for r in ROLES)} (eval.columns names them)"


def _lines(path: Path) -> list[str]:
    from nlpx.eval.glue_reader import _lines as glue_lines  # UTF-8 (BOM dropped), "\n" line ends only

    return glue_lines(path)


def _score(value, path: Path, lineno: int, key: str) -> float:
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if not math.isfinite(number):
        raise UserError(f"{path}:{lineno}: '{key}' is not a finite number: {value!r}")
    return number


def _text(value, path: Path, lineno: int, key: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{path}:{lineno}: '{key}' is not a string: {value!r}")
    return value.replace("\ufeff", "")


def _read_jsonl(path: Path, columns: dict[str, str]) -> list[Pair]:
    pairs = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object with keys {_needs(columns)}")
        for role in ROLES:
            if columns[role] not in obj:
                raise UserError(f"{path}:{lineno}: no key '{columns[role]}' (each line needs {_needs(columns)})")
        pairs.append(Pair(_text(obj[columns["sentence1"]], path, lineno, columns["sentence1"]),
                          _text(obj[columns["sentence2"]], path, lineno, columns["sentence2"]),
                          _score(obj[columns["score"]], path, lineno, columns["score"])))
    return pairs


def _read_tsv(path: Path, columns: dict[str, str]) -> list[Pair]:
    """Split on tabs by hand (no quote processing), as nlpx's GLUE reader: STS texts hold quotes."""
    lines = _lines(path)
    if not lines:
        raise UserError(f"{path}: empty file (expected a header row with columns {_needs(columns)})")
    header = lines[0].split("\t")
    missing = [columns[r] for r in ROLES if columns[r] not in header]
    if missing:
        raise UserError(f"{path}:1: header has no column {', '.join(repr(c) for c in missing)} "
                        f"(a scored-pairs .tsv needs a header row with {_needs(columns)})")
    pos = {r: header.index(columns[r]) for r in ROLES}
    pairs = []
    for lineno, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise UserError(f"{path}:{lineno}: expected {len(header)} tab-separated columns (as in the header: "
                            f"{', '.join(header)}), found {len(cells)}")
        pairs.append(Pair(cells[pos["sentence1"]].replace("\ufeff", ""), cells[pos["sentence2"]].replace("\ufeff", ""),
                          _score(cells[pos["score"]], path, lineno, columns["score"])))
    return pairs


def read_stsb(glue_dir: str | Path, split: str) -> PairSet:
    """STS-B dev (or a test file with gold scores) from a GLUE folder, through nlpx's GLUE reader."""
    from nlpx.eval.glue_reader import available_splits, read_file, read_split

    glue_dir = Path(glue_dir)
    if not glue_dir.is_dir():
        raise UserError(f"data.glue_dir={glue_dir}: no such folder (eval.split=none evaluates only eval.files)")
    if split not in ("dev", "test"):
        raise UserError(f"eval.split={split}: unknown split (valid: {', '.join(SPLITS)})")
    path = available_splits(glue_dir, "stsb").get(split)
    if path is None:
        try:
            read_split(glue_dir, "stsb", split)  # the reader's message: where it looked
        except UserError as e:
            raise UserError(f"eval.split={split}: {e} (eval.split=none evaluates only eval.files)") from None
        raise UserError(f"eval.split={split}: no STS-B {split} data under {glue_dir}")
    header = (_lines(path)[:1] or [""])[0].split("\t") if path.suffix == ".tsv" else []
    if split == "test" and "score" in header:
        examples = read_file(path, "stsb", "dev")  # a labelled test file: the dev layout
    else:
        examples = read_split(glue_dir, "stsb", split)
    if any(e.label is None for e in examples):
        raise UserError(f"eval.split={split}: {path} has no gold scores (GLUE's STS-B test set is "
                        "unlabelled); use eval.split=dev, or give a labelled file in eval.files")
    return PairSet(f"stsb-{split}", str(path), [Pair(e.text_a, e.text_b, float(e.label)) for e in examples])


def _as_list(value) -> list[str]:
    """eval.files: a list, or one path given as a plain string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def read_datasets(ev, glue_dir) -> list[PairSet]:
    """Every data set of the run, read and checked: STS-B (eval.split) first, then eval.files."""
    split = "none" if ev.split is None else str(ev.split)
    files = _as_list(ev.files)
    columns = {r: str(ev.columns[r]) for r in ROLES}
    if split in NO_SPLIT and not files:
        raise UserError("eval.split=none and no eval.files: nothing to evaluate")
    sets = [] if split in NO_SPLIT else [read_stsb(glue_dir, split)]
    for f in files:
        sets.append(PairSet(Path(f).stem, f, read_pairs(f, columns)))
    names = [s.name for s in sets]
    for s in sets:  # two files with the same stem: each row named by its path
        if names.count(s.name) > 1:
            s.name = s.source
    return sets


# -- the model ----------------------------------------------------------------------------------

@dataclass
class Encoder:
    model: object
    tokenizer: object
    path: Path
    device: str
    pooler_trained: bool  # False: the checkpoint has no pooler weights (an MLM-only export)


def load_encoder(path: str | Path, device: str = "cpu") -> Encoder:
    """AutoModel + AutoTokenizer from a local folder, in eval mode on `device`."""
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"model.pretrained={path}: cannot load a tokenizer there ({str(e).splitlines()[0]})") from None
    if tokenizer.pad_token is None:  # GPT-2: padding is masked out, any id does
        if tokenizer.eos_token is None:
            raise UserError(f"model.pretrained={path}: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    try:
        model, loading = AutoModel.from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as e:
        raise UserError(f"model.pretrained={path}: cannot load a model there ({str(e).splitlines()[0]})") from None
    missing = list(loading.get("missing_keys", []))
    pooler_missing = [k for k in missing if "pooler" in k]
    others = [k for k in missing if "pooler" not in k]
    if others:
        log.warning("model.pretrained=%s: %d weights are not in the checkpoint and were initialised at random "
                    "(%s, ...)", path, len(others), others[0])
    has_pooler = getattr(model, "pooler", None) is not None
    return Encoder(model.eval().to(device), tokenizer, path, device, pooler_trained=has_pooler and not pooler_missing)


def effective_pooling(encoder: Encoder, pooling: str) -> str:
    """`cls` on a checkpoint without trained pooler weights would read a random layer: its first
    token's hidden state is used instead (what `cls` means for a model with no pooler at all)."""
    return "cls_before_pooler" if pooling == "cls" and not encoder.pooler_trained else pooling


def position_limit(config) -> int | None:
    """The longest input the model's position table takes (RoBERTa's first pad_id + 1 rows are not
    positions); None where there is no limit in the config."""
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not n or n < 0:
        return None
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        n -= (config.pad_token_id or 0) + 1
    return int(n)


def resolve_max_length(value, encoder: Encoder) -> tuple[int, str]:
    """(max_length, where it came from), as sentence-transformers chooses it when value is null:
    the checkpoint's sentence_bert_config.json max_seq_length, else the tokenizer's model_max_length
    capped at the model's position limit."""
    limit = position_limit(encoder.model.config)
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise UserError(f"eval.max_length={value}: give a number of tokens (2 or more), or null")
        if limit is not None and value > limit:
            raise UserError(f"eval.max_length={value}: the model takes at most {limit} tokens")
        return int(value), "eval.max_length"
    st_config = encoder.path / "sentence_bert_config.json"
    if st_config.is_file():
        try:
            st_max = json.loads(st_config.read_text()).get("max_seq_length")
        except (ValueError, AttributeError):
            st_max = None
        if isinstance(st_max, int) and st_max > 1:
            return min(st_max, limit or st_max), "sentence_bert_config.json"
    candidates = [n for n in (encoder.tokenizer.model_max_length, limit) if n and n < 1_000_000]
    if not candidates:
        return 512, "default (no limit in the checkpoint)"
    return int(min(candidates)), "tokenizer/model position limit"


def sentence_transformers_pooling(path: Path) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with (its 1_Pooling config)."""
    modules = path / "modules.json"
    if not modules.is_file():
        return None
    try:
        for m in json.loads(modules.read_text()):
            if str(m.get("type", "")).endswith("Pooling"):
                cfg = json.loads((path / m.get("path", "") / "config.json").read_text())
                if cfg.get("pooling_mode"):
                    mode = cfg["pooling_mode"]
                    return mode if isinstance(mode, str) else ",".join(mode)
                names = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                         "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                         "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
                return ",".join(v for k, v in names.items() if cfg.get(k)) or None
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return None


# -- encoding and scoring -----------------------------------------------------------------------

def encode(encoder: Encoder, sentences: list[str], *, pooling: str, batch_size: int, max_length: int):
    """[len(sentences), hidden] float32 CPU tensor, in the order of `sentences`.

    Batches hold sentences of similar token length (sorted, longest first), each padded to its
    own longest member; no gradient."""
    import numpy as np
    import torch

    from nlpx.data.buckets import bucketed_batches
    from nlpx.embeddings.pooling import pool

    tok = encoder.tokenizer
    ids = tok(list(sentences), truncation=True, max_length=max_length, return_attention_mask=False,
              return_token_type_ids=False)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    pad = tok.pad_token_id
    out = None
    with torch.inference_mode():
        for batch in bucketed_batches(lengths, batch_size, seed=0, epoch=0, shuffle=False):
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :lengths[i]] = torch.tensor(ids[i])
                mask[row, :lengths[i]] = 1
            # single sentences: token_type_ids would be all zeros, every family's default
            outputs = encoder.model(input_ids=input_ids.to(encoder.device), attention_mask=mask.to(encoder.device))
            vectors = pool(outputs, mask, pooling).float().cpu()
            if out is None:
                out = torch.empty((len(sentences), vectors.shape[-1]), dtype=torch.float32)
            out[torch.as_tensor(batch)] = vectors
    return out


def cosine_scores(a, b):
    """cos(a_i, b_i) for each row, as numpy float32 (sentence-transformers' pairwise_cos_sim)."""
    import torch.nn.functional as F

    return (F.normalize(a.float(), p=2, dim=1) * F.normalize(b.float(), p=2, dim=1)).sum(dim=1).numpy()


def correlations(gold, predicted) -> dict[str, float]:
    """Spearman's and Pearson's correlation (scipy, 0-1 scale); nan where one side is constant."""
    import warnings

    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    gold, predicted = np.asarray(gold, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: the nan says it
        return {"spearman": float(spearmanr(gold, predicted)[0]), "pearson": float(pearsonr(gold, predicted)[0])}


def evaluate_pairs(encoder: Encoder, pairs: list[Pair], *, pooling: str, batch_size: int,
                   max_length: int) -> dict:
    """Encode the pairs' distinct sentences, score each pair by cosine, correlate with the gold
    scores. Spearman and Pearson x100; examples/s = pairs per second of encoding + scoring."""
    texts = list(dict.fromkeys(s for p in pairs for s in (p.sentence1, p.sentence2)))
    index = {s: i for i, s in enumerate(texts)}
    started = time.perf_counter()
    vectors = encode(encoder, texts, pooling=pooling, batch_size=batch_size, max_length=max_length)
    predicted = cosine_scores(vectors[[index[p.sentence1] for p in pairs]], vectors[[index[p.sentence2] for p in pairs]])
    seconds = time.perf_counter() - started
    corr = correlations([p.score for p in pairs], predicted)
    return {"pairs": len(pairs), "sentences_encoded": len(texts), "spearman": 100 * corr["spearman"],
            "pearson": 100 * corr["pearson"], "seconds": round(seconds, 4),
            "examples_per_s": len(pairs) / seconds, "sentences_per_s": len(texts) / seconds,
            "predictions": [float(x) for x in predicted]}


# -- the command --------------------------------------------------------------------------------

def sts_overrides(overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
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
    from nlpx.models.pretrained import resolve_pretrained
    from nlpx.rundir import run_dir_for
    from nlpx.train.run import quiet_libraries, write_run_config

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

    run_dir = run_dir_for(cfg)
    write_run_config(run_dir, cfg, overrides)
    log.info("run directory: %s", run_dir)
    loggers = _loggers(cfg, run_dir)
    rows = []
    for ds in datasets:
        log.info("STS %s: %d pairs", ds.name, len(ds.pairs))
        result = evaluate_pairs(encoder, ds.pairs, pooling=used, batch_size=batch_size, max_length=max_length)
        predictions = result.pop("predictions")
        pred_file = run_dir / "predictions" / f"{_file_name(ds.name)}.tsv"
        atomic_write_text(pred_file, "sentence1\tsentence2\tscore\tcosine\n" + "".join(
            f"{_cell(p.sentence1)}\t{_cell(p.sentence2)}\t{p.score!r}\t{c!r}\n" for p, c in zip(ds.pairs, predictions)))
        rows.append({"name": ds.name, "source": ds.source, **result, "predictions_file": str(pred_file)})
    settings = {"pooling": pooling, "pooling_used": used, "similarity": "cosine", "scale": "x100",
                "max_length": max_length, "max_length_from": max_length_from, "batch_size": batch_size,
                "device": device, "dtype": "float32", "split": str(ev.split),
                "files": _as_list(ev.files), "sentence_transformers_pooling": st_pooling}
    report = {"model": str(model_path), "pretrained": str(cfg.model.pretrained), "run_dir": str(run_dir),
              "pooling": pooling, "datasets": rows, "settings": settings}
    report["protocol"] = protocol_lines(report)
    _write_outputs(report, run_dir)
    record_in_pretraining_run(model_path, report)
    _log_report(loggers, report)
    return report


def _cell(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "data"


def compact(report: dict) -> dict:
    """What a summary keeps of an STS evaluation: the pooling, and Spearman/Pearson per data set
    (the first data set's Spearman is the score)."""
    rows = report["datasets"]
    return {"run_dir": report["run_dir"], "pooling": report["pooling"],
            "score": rows[0]["spearman"] if rows else None,
            "datasets": {r["name"]: {"spearman": r["spearman"], "pearson": r["pearson"], "pairs": r["pairs"],
                                     "examples_per_s": r["examples_per_s"]} for r in rows},
            "settings": {k: report["settings"][k] for k in ("pooling_used", "similarity", "scale", "max_length",
                                                              "batch_size", "split")}}


def _write_outputs(report: dict, run_dir: Path) -> None:
    from nlpx.train.export import summary_info

    atomic_write_json(run_dir / "results.json", report)
    atomic_write_text(run_dir / "results.md", to_markdown(report))
    atomic_write_json(run_dir / "summary.json", {"run_dir": report["run_dir"], "model": report["model"],
                                                 "pooling": report["pooling"], "sts": compact(report),
                                                 **summary_info()})


def record_in_pretraining_run(model_path: Path, report: dict) -> None:
    from nlpx.rundir import record_in_run

    entry = compact(report)
    record_in_run(model_path, "sts", entry, {"run_dir": entry["run_dir"], "pooling": entry["pooling"],
                                             "score": entry["score"]})


def _loggers(cfg, run_dir: Path):
    from omegaconf import OmegaConf

    from nlpx.train.loggers import build_loggers

    return build_loggers(cfg, run_dir, OmegaConf.to_container(cfg, resolve=True), resume_step=None)


def _log_report(loggers, report: dict) -> None:
    """sts/<data set>/{spearman,pearson,examples_per_s} scalars, and the table itself for W&B."""
    from nlpx.train.loggers import close_loggers

    flat = {}
    for r in report["datasets"]:
        for k in ("spearman", "pearson", "examples_per_s"):
            flat[f"sts/{r['name']}/{k}"] = r[k]
    header, rows = table_rows(report)
    for lg in loggers:
        lg.log_metrics(flat, step=0)
        if hasattr(lg, "log_table"):  # W&B
            lg.log_table(key="sts/results", columns=header, data=rows)
    close_loggers(loggers)


# -- the table ----------------------------------------------------------------------------------

def protocol_lines(report: dict) -> list[str]:
    s = report["settings"]
    pooling = s["pooling"] + (" (no trained pooler: the first token)" if s["pooling_used"] != s["pooling"] else "")
    return [(f"Spearman and Pearson correlation x100 between the gold scores and the cosine similarity of the "
             f"two sentence vectors; model.pooling={pooling}; max length {s['max_length']} tokens "
             f"({s['max_length_from']}); batches of {s['batch_size']} sentences sorted by length; no gradient; "
             f"{s['device']}, float32.")]


def _num(x: float, digits: int = 2) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    header = ["Data", "Pairs", "Spearman", "Pearson", "examples/s"]
    rows = [[r["name"], f"{r['pairs']:,}", _num(r["spearman"]), _num(r["pearson"]), _num(r["examples_per_s"], 1)]
            for r in report["datasets"]]
    return header, rows


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    out = [f"# STS results: {report['model']} (pooling {report['pooling']})", "",
           "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += [""] + report["protocol"]
    return "\n".join(out) + "\n"


def print_table(report: dict) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(report)
    table = Table(title=f"STS: cosine, pooling {report['pooling']}", show_header=True)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    console.print(f"model: {report['model']}", soft_wrap=True)
    for line in report["protocol"]:
        console.print(line, soft_wrap=True)
    console.print(f"run directory: {report['run_dir']}", soft_wrap=True)
