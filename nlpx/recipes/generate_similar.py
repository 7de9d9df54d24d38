"""`nlpx generate similar`: sentences similar to each input, sampled from a UniLM / SimBERT model and
ranked by cosine to the input with the same model (nlpx/generation/seq2seq.py).

  nlpx generate similar model.pretrained=RUN_DIR text="..." num=5
  nlpx generate similar model.pretrained=RUN_DIR --file inputs.txt     (.txt a line each, or .jsonl)

runs/generate/<run_id>/
  config.yaml, overrides.yaml   the composed config and command lines
  generations.jsonl             per input: {"text", "generations": [{"text", "cosine"}, ...] (best
                                first), "samples", "distinct"}
  results.md, summary.json      the same as a table; the settings and versions

The inputs, every option and the model are checked before the run directory exists.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")

SHORT = ("text", "num", "file")  # `text=...` is short for `generate.text=...`


def generate_overrides(overrides: list[str]) -> list[str]:
    from nlpx.config import command_overrides

    return command_overrides(
        overrides, group="generate", option="similar", experiment="generate", aliases=SHORT,
        refused=("optim", "budget", "trainer", "objective", "task", "trick", "data", "eval"),
        refusal="{o}: `nlpx generate similar` trains nothing and reads no data; it reads model.pretrained, "
                "model.pooling, seed and generate.* (text=, num=, --file)",
        own="{o}: `nlpx generate similar` sets generate itself; change generate.* keys")


def _int(key: str, value, minimum: int, optional: bool = False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"generate.{key}={value}: give an integer >= {minimum}" + (" (or null)" if optional else ""))
    return value


def sampling_settings(g):
    from nlpx.generation.seq2seq import Sampling

    temperature = g.temperature
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise UserError(f"generate.temperature={temperature}: give a number > 0")
    top_p = g.top_p
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise UserError(f"generate.top_p={top_p}: give a probability in (0, 1], or null")
    return Sampling(candidates=_int("candidates", g.candidates, 1), max_new_tokens=_int("max_new_tokens", g.max_new_tokens, 1),
                    temperature=float(temperature), top_p=None if top_p is None else float(top_p),
                    top_k=_int("top_k", g.top_k, 1, optional=True))


def read_inputs(g) -> tuple[list[str], str]:
    """(the input texts, where they came from)."""
    if (g.text is None) == (g.file is None):
        raise UserError("nlpx generate similar: give one input with text=\"...\" or many with --file PATH "
                        "(one of them)")
    if g.text is not None:
        if not str(g.text).strip():
            raise UserError("text=: empty; give a sentence")
        return [str(g.text)], "text="
    path = Path(str(g.file))
    if not path.is_file():
        raise UserError(f"--file {path}: no such file")
    texts = []
    if path.suffix.lower() == ".jsonl":
        from nlpx.data.jsonl import json_objects

        field = str(g.text_field)
        for lineno, obj in json_objects(path, f"key '{field}' (generate.text_field)"):
            value = obj.get(field)
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{path}:{lineno}: '{field}' is not a non-empty string (generate.text_field names "
                                f"the key): {value!r}")
            texts.append(value)
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"--file {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise UserError(f"--file {path}: no input sentences")
    return texts, str(path)


def generate_similar(overrides: list[str]) -> dict:
    import torch

    from nlpx.config import compose
    from nlpx.embeddings.encoder import effective_pooling, load_encoder
    from nlpx.embeddings.pooling import check_pooling
    from nlpx.generation.seq2seq import distinct, rank, sample
    from nlpx.objectives.seq2seq import SEQ2SEQ_MODEL_TYPES
    from nlpx.pretrained import resolve_pretrained
    from nlpx.recipes.eval_sts import _device

    quiet_libraries()
    overrides = generate_overrides(list(overrides))
    cfg = compose(overrides)
    g = cfg.generate
    settings = sampling_settings(g)
    keep = _int("num", g.num, 1)
    max_length = _int("max_length", g.max_length, 4)
    inputs, source = read_inputs(g)
    pooling = check_pooling(cfg.model.get("pooling"))
    path = resolve_pretrained(cfg.model.get("pretrained"))
    if path is None:
        raise UserError("nlpx generate similar samples from a trained model: give model.pretrained=PATH (a run of "
                        "objective=unilm or simbert, or its hf/ folder)")
    device = _device(g.device)
    torch.manual_seed(int(cfg.seed))
    encoder = load_encoder(path, device, head="masked_lm")
    if encoder.lm.config.model_type not in SEQ2SEQ_MODEL_TYPES:
        raise UserError(f"model.pretrained={path}: a {encoder.lm.config.model_type} checkpoint; generation uses the "
                        f"seq2seq mask of {', '.join(SEQ2SEQ_MODEL_TYPES)} models trained with objective=unilm or simbert")
    if getattr(encoder.lm.config, "nlpx_seq2seq_lm", "causal") != "causal":
        raise UserError(f"model.pretrained={path}: trained with objective.lm={encoder.lm.config.nlpx_seq2seq_lm}, which "
                        "predicts [MASK]ed tokens in place; generation samples the next token (train with lm=causal)")
    used = effective_pooling(encoder, pooling)
    generator = torch.Generator().manual_seed(int(cfg.seed))

    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        records = []
        for text in inputs:
            samples = sample(encoder.lm, encoder.tokenizer, text, settings, generator, max_length,
                             use_cache=bool(g.kv_cache))
            ranked = rank(encoder, text, samples, pooling=used, max_length=max_length, keep=keep)
            records.append({"text": text, "generations": ranked, "samples": len(samples),
                            "distinct": len(distinct(encoder.tokenizer, text, samples))})
        atomic_write_text(run.run_dir / "generations.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        report = {"run_dir": str(run.run_dir), "model": str(path), "inputs": source, "records": records,
                  "settings": {"num": keep, "candidates": settings.candidates, "max_new_tokens": settings.max_new_tokens,
                               "temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k,
                               "max_length": max_length, "pooling": pooling, "pooling_used": used,
                               "kv_cache": bool(g.kv_cache), "seed": int(cfg.seed), "device": device}}
        atomic_write_text(run.run_dir / "results.md", to_markdown(report))
        run.summarize({k: report[k] for k in ("run_dir", "model", "inputs", "settings")}
                      | {"inputs_count": len(records), "generations": str(run.run_dir / "generations.jsonl")})
        return report


def to_markdown(report: dict) -> str:
    lines = [f"# nlpx generate similar: {report['model']}", "", "| input | generated (best first) | cosine |",
             "|---|---|---|"]
    for r in report["records"]:
        for i, gen in enumerate(r["generations"] or [{"text": "(none distinct from the input)", "cosine": None}]):
            cos = "" if gen["cosine"] is None else f"{gen['cosine']:.3f}"
            lines.append(f"| {r['text'] if i == 0 else ''} | {gen['text']} | {cos} |")
    s = report["settings"]
    lines += ["", f"Sampling: {s['candidates']} candidates per input, temperature {s['temperature']}, top-p {s['top_p']}, "
                  f"top-k {s['top_k']}, at most {s['max_new_tokens']} new tokens, seed {s['seed']}; ranked by cosine "
                  f"of model.pooling={s['pooling_used']} vectors, the best {s['num']} kept."]
    return "\n".join(lines) + "\n"


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    rows = []
    for r in report["records"]:
        for i, gen in enumerate(r["generations"]):
            rows.append([r["text"] if i == 0 else "", gen["text"], f"{gen['cosine']:.3f}"])
        if not r["generations"]:
            rows.append([r["text"], "(none distinct from the input)", ""])
    show("nlpx generate similar", ["input", "generated (best first)", "cosine"], rows,
         [f"written: {report['run_dir']}/generations.jsonl"], left=2)
