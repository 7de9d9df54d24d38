"""`nlpx eval mlm`: a checkpoint's masked-LM loss and per-layer attention entropy on the common
held-out set at several sequence lengths (eval.lengths), no training (nlpx/eval/mlm_lengths.py).

The corpus: for an nlpx run directory, the one it was pretrained on (its config.yaml's data and
tokenizer, so the corpus cache entry and its common set are the ones its validation used;
data.cache_dir may point elsewhere); data.* overrides (or a plain HF checkpoint) name another,
tokenized with the checkpoint's tokenizer.

runs/mlm/<run_id>/
  config.yaml, overrides.yaml   the composed config and command lines
  results.json, results.md      per length: examples, masked tokens, loss, accuracy, entropies
  summary.json                  the compact result and the versions
When model.pretrained is an nlpx run directory, its summary.json gets the same entry
(`mlm_lengths`), as `nlpx eval glue` records `glue` there.

Every option, the corpus and the model are checked before the run directory exists.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")


def mlm_overrides(overrides: list[str]) -> list[str]:
    from nlpx.config import command_overrides

    return command_overrides(
        overrides, group="eval", option="mlm", experiment="mlm", refused=("optim", "budget", "trainer", "objective", "task", "trick"),
        refusal="{o}: `nlpx eval mlm` trains nothing; it reads no {group} settings",
        own="{o}: `nlpx eval mlm` sets eval itself; change eval.* keys (eval.lengths=[...])")


def _positive_int(key: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{key}={value}: give an integer >= {minimum}")
    return value


def corpus_config(cfg, overrides: list[str], model_path: Path):
    """(the config that prepares the corpus, the training length or None)."""
    from omegaconf import OmegaConf

    from nlpx.recipes.pretrain import upgraded

    run_dir = model_path.parent if model_path.name == "hf" else None
    saved = run_dir / "config.yaml" if run_dir is not None else None
    data_keys = [o.partition("=")[0].lstrip("+~") for o in overrides if o.lstrip("+~").startswith("data")]
    if saved is not None and saved.is_file() and set(data_keys) <= {"data.cache_dir"}:
        run_cfg = upgraded(OmegaConf.load(saved))
        if "data.cache_dir" in data_keys:
            run_cfg.data.cache_dir = cfg.data.cache_dir
        return run_cfg, int(run_cfg.data.seq_len)
    if cfg.data.name not in ("text", "synthetic"):
        raise UserError(f"data={cfg.data.name}: `nlpx eval mlm` reads a pretraining corpus (data=text "
                        "data.paths=[...] or data=synthetic), or the one of the nlpx run in model.pretrained")
    return cfg, None


def eval_mlm(overrides: list[str]) -> dict:
    import torch
    from transformers import AutoModelForMaskedLM

    from nlpx.config import compose
    from nlpx.data.common_eval import common_eval_set
    from nlpx.data.prepare import prepare_corpus
    from nlpx.embeddings.encoder import position_limit
    from nlpx.eval.mlm_lengths import evaluate_length, examples_for, position_kind, to_markdown
    from nlpx.models.attention_scale import restore  # (importing nlpx.models registers GAU's classes)
    from nlpx.pretrained import check_vocab, checkpoint_config, resolve_pretrained
    from nlpx.recipes.eval_sts import _device

    quiet_libraries()
    overrides = list(overrides)
    cfg = compose(mlm_overrides(overrides))
    ev = cfg.eval
    model_path = resolve_pretrained(cfg.model.get("pretrained"))
    if model_path is None:
        raise UserError("nlpx eval mlm scores a trained masked LM: give model.pretrained=PATH (an nlpx run "
                        "directory or a local HF checkpoint folder)")
    lengths = list(ev.lengths) if ev.lengths is not None else []
    if not lengths:
        raise UserError("eval.lengths=[]: give the sequence lengths to score, e.g. eval.lengths=[128,256,512]")
    for n in lengths:
        _positive_int("eval.lengths", n, minimum=4)
    tokens, batch_size = _positive_int("eval.tokens", ev.tokens), _positive_int("eval.batch_size", ev.batch_size)
    entropy = ev.entropy
    if not isinstance(entropy, bool):
        raise UserError(f"eval.entropy={entropy}: true or false")
    device = _device(ev.device)

    corpus_cfg, training_length = corpus_config(cfg, overrides, model_path)
    if checkpoint_config(model_path).model_type == "xlnet":
        raise UserError(f"model.pretrained={model_path}: an XLNet checkpoint, trained by the permutation LM; a "
                        "masked-LM evaluation is not defined for it (compare it downstream: nlpx eval glue)")
    torch.manual_seed(int(cfg.seed))
    try:
        model, loading = AutoModelForMaskedLM.from_pretrained(
            str(model_path), local_files_only=True, output_loading_info=True,
            **({"attn_implementation": "eager"} if entropy else {}))
    except (OSError, ValueError) as e:
        raise UserError(f"model.pretrained={model_path}: no masked LM loads from there "
                        f"({str(e).splitlines()[0]})") from None
    missing = [k for k in loading.get("missing_keys", []) if "position_ids" not in k]
    if missing:
        raise UserError(f"model.pretrained={model_path}: {len(missing)} weights of the masked-LM model are not in "
                        f"the checkpoint ({missing[0]}, ...): it has no trained MLM head (an RTD run's hf/ is the "
                        "discriminator: give RUN/hf/generator)")
    restore(model)  # nlpx's attention scale or pattern, where the checkpoint was trained with one
    limit = position_limit(model.config)
    if limit is not None and max(lengths) > limit:
        raise UserError(f"eval.lengths={list(lengths)}: {max(lengths)} tokens exceed the model's position limit "
                        f"({limit})")
    prepared = prepare_corpus(corpus_cfg)
    check_vocab(prepared.tokenizer, model.config.vocab_size, str(cfg.model.pretrained))
    if training_length is None:
        training_length = getattr(model.config, "nlpx_scale_train_length", None)
    model = model.eval().to(device)
    positions = position_kind(model.config)
    scale = str(getattr(model.config, "nlpx_attention_scale", "sqrt_d"))

    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        rows = []
        for n in lengths:
            arrays = common_eval_set(prepared, int(n), examples_for(int(n), tokens))
            log.info("MLM at length %d: %d examples", n, len(arrays["lengths"]))
            result = evaluate_length(model, arrays, batch_size=batch_size, device=device, entropy=entropy)
            rows.append({"length": int(n), **result,
                         "beyond_training_length": bool(training_length and n > training_length)})
        report = {"model": str(model_path), "pretrained": str(cfg.model.pretrained), "run_dir": str(run.run_dir),
                  "positions": positions, "attention_scale": scale, "training_length": training_length,
                  "lengths": rows,
                  "settings": {"tokens": tokens, "batch_size": batch_size, "entropy": entropy, "device": device,
                               "corpus": str(prepared.path)}}
        atomic_write_json(run.run_dir / "results.json", report)
        atomic_write_text(run.run_dir / "results.md", to_markdown(report))
        compact = {"run_dir": report["run_dir"], "positions": positions, "attention_scale": scale,
                   "training_length": training_length,
                   "mlm_loss": {str(r["length"]): r["mlm_loss"] for r in rows}}
        run.summarize({"run_dir": report["run_dir"], "model": report["model"], "mlm_lengths": compact})
        from nlpx.rundir import record_in_run

        record_in_run(model_path, "mlm_lengths", compact, compact)
        run.log_metrics({f"mlm/L{r['length']}/{k}": r[k] for r in rows for k in ("mlm_loss", "mlm_acc")}, step=0)
    return report
