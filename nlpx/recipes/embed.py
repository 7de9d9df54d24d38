"""`nlpx train objective=simcse|esimcse|angle model.pretrained=PATH`: train a sentence encoder.

  1. everything a user can get wrong is checked before the run directory exists: the objective's
     options, model.pooling, the data (every line read), the checkpoint, the validation pairs;
  2. STS validation (objective.validation: STS-B dev from its glue_dir) before the first step,
     every trainer.val_check_interval steps and after the last; the budget is
     min(budget.max_steps, budget.max_epochs x full batches per epoch);
  3. hf/ is the trained encoder (plus its tokenizer) as a plain transformers model, and the
     sentence-transformers files that make `SentenceTransformer(hf/)` pool the same way
     (modules.json, sentence_bert_config.json, 1_Pooling/), where sentence-transformers has that
     pooling (not for `cls` over a pooler layer);
  4. summary.json records model.pooling, the STS results before and after, and the objective's
     settings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from nlpx.config import EMBEDDING_UNREAD, refuse_unread
from nlpx.errors import UserError
from nlpx.rundir import run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries
from nlpx.run.schedule import check_epoch_budget

log = logging.getLogger("nlpx")

# sentence-transformers' Pooling config for nlpx's model.pooling ("cls" over a pooler: none)
ST_POOLING = {"cls_before_pooler": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
              "max": "pooling_mode_max_tokens"}
VALIDATION_SPLITS = ("auto", "dev", "test", "none")


def check_embedding_config(cfg) -> None:
    """What an embedding run needs beyond the ranges every config is checked for
    (nlpx/validate.py), before any output exists."""
    c = cfg.objective
    if int(c.batch_size) < 2:
        raise UserError(f"objective.batch_size={c.batch_size}: in-batch negatives need at least 2 examples a batch")
    check_epoch_budget(cfg.budget, "embedding training")
    if cfg.get("resume"):
        raise UserError("resume: only pretraining runs resume from a checkpoint; an embedding run restarts")
    if cfg.get("trick"):
        raise UserError(f"trick={list(cfg.trick)}: fine-tuning tricks apply to objective=classify, not to "
                        f"objective={c.name}")
    t = cfg.trainer
    if str(t.devices) not in ("1", "auto") or int(t.num_nodes) != 1 or "ddp" in str(t.strategy):
        raise UserError(f"trainer={t.name}: embedding runs train on one device (in-batch negatives of one "
                        "process); trainer.devices=1")


def validation_pairs(cfg):
    """The STS pairs validated on: objective.validation.split of STS-B in its glue_dir (auto: dev
    when that folder has it, else none), or None."""
    from nlpx.embeddings.pairs import read_stsb

    v = cfg.objective.validation
    split = "none" if v.split is None else str(v.split)
    if split not in VALIDATION_SPLITS:
        raise UserError(f"objective.validation.split={split}: unknown (valid: {', '.join(VALIDATION_SPLITS)})")
    if split == "none":
        return None
    if split == "auto":
        from nlpx.eval.glue_reader import available_splits

        glue = Path(str(v.glue_dir))
        if not glue.is_dir() or "dev" not in available_splits(glue, "stsb"):
            log.info("objective.validation: no STS-B dev under %s; no STS validation "
                     "(objective.validation.glue_dir=PATH to have it)", glue)
            return None
        split = "dev"
    return read_stsb(str(v.glue_dir), split, group="objective.validation")


def embedding_run(cfg, overrides: list[str]) -> dict:
    import lightning as L
    import torch
    from hydra.utils import get_class
    from torch.utils.data import DataLoader, RandomSampler

    from nlpx.embeddings.data import Collator, load_data
    from nlpx.embeddings.encoder import effective_pooling, load_encoder, position_limit, resolve_max_length
    from nlpx.embeddings.module import EmbeddingModule
    from nlpx.embeddings.pooling import check_pooling
    from nlpx.pretrained import checkpoint_config, resolve_pretrained
    from nlpx.objectives.contrastive import SentenceEncoder
    from nlpx.run.trainer import build_finetune_trainer

    quiet_libraries()
    started = time.time()
    refuse_unread(overrides, EMBEDDING_UNREAD, "embedding training", does="trains embeddings")
    check_embedding_config(cfg)
    c = cfg.objective
    pooling = check_pooling(cfg.model.get("pooling"))
    objective_cls = get_class(c._target_)
    kind = objective_cls.data_kind_for(cfg.data)
    objective = objective_cls(c, kind)  # its options are checked here, before anything is read
    data = objective.training_rows(load_data(kind, cfg.data, c), int(cfg.seed))
    batch_size = int(c.batch_size)
    if len(data.rows) < batch_size:
        raise UserError(f"objective.batch_size={batch_size}: the data has only {len(data.rows)} {kind}; "
                        "give a smaller batch or more data")
    if objective_cls.model_head == "masked_lm" and pooling == "cls":
        raise UserError(f"model.pooling=cls: objective={c.name} loads the checkpoint with its masked-LM head, whose "
                        "class has no pooler; give model.pooling=cls_before_pooler (the [CLS] hidden state) or mean")
    validation = validation_pairs(cfg)
    path = resolve_pretrained(cfg.model.get("pretrained"))
    if path is None:
        raise UserError(f"objective={c.name} trains a pretrained encoder: give model.pretrained=PATH (an nlpx "
                        "run directory, a local HF checkpoint folder, or package:NAME)")
    if checkpoint_config(path).model_type == "xlnet":
        raise UserError(f"model.pretrained={path}: an XLNet checkpoint; objective={c.name} does not train XLNet (its "
                        "[CLS]-last segment layout is not carried through the sentence views: use nlpx eval sts to "
                        "score it)")
    torch.manual_seed(int(cfg.seed))  # the MLP's (and any missing weight's) initialisation
    loaded = load_encoder(path, "cpu", head=objective_cls.model_head)
    used_pooling = effective_pooling(loaded, pooling)
    if used_pooling != pooling:
        log.warning("model.pooling=cls: %s has no trained pooler weights; its first token's hidden state is "
                    "used (as cls_before_pooler)", path)
    model, tokenizer = loaded.model, loaded.tokenizer
    (loaded.lm or model).train()
    limit = position_limit(model.config)
    max_length = int(c.max_length) if limit is None else min(int(c.max_length), limit)
    # validation encodes as `nlpx eval sts` does the checkpoint (training truncates at max_length
    # for speed, as SimCSE); hf/'s sentence_bert_config.json keeps this length
    eval_length, _ = resolve_max_length(None, loaded)
    encoder = SentenceEncoder(model, used_pooling, mlp=bool(c.mlp), lm=loaded.lm)
    objective.attach(encoder)

    # Lightning steps the optimizer after every `accumulate` batches and at an epoch's last batch
    accumulate = int(cfg.trainer.accumulate_grad_batches)
    total = int(cfg.budget.max_epochs) * math.ceil((len(data.rows) // batch_size) / accumulate)
    cap = None if cfg.budget.max_steps is None else int(cfg.budget.max_steps)  # checked >= 1 with the config
    total = min(total, cap) if cap else total
    collate = objective.collator(tokenizer, max_length, int(cfg.seed)) or Collator(
        tokenizer, kind, max_length, repeat=objective.collate_repeat(int(cfg.seed)), position_limit=limit)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    loader = DataLoader(data.rows, batch_size=batch_size, sampler=RandomSampler(data.rows, generator=generator),
                        collate_fn=collate, drop_last=True, num_workers=0)

    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        run_dir = run.run_dir
        module = EmbeddingModule(cfg, encoder, objective, tokenizer, total_steps=total, validation=validation,
                                 max_length=eval_length, loggers=run.loggers)
        trainer = build_finetune_trainer(cfg, run_dir, run.loggers, max_epochs=int(cfg.budget.max_epochs), max_steps=total,
                                         gradient_clip_val=cfg.trainer.gradient_clip_val, accumulate=accumulate)
        run.follow(trainer)
        L.seed_everything(int(cfg.seed), verbose=False)
        trainer.fit(module, train_dataloaders=loader)  # validates at its start and end (on the device)
        encoder.eval()
        # with a masked-LM head (unilm, simbert) hf/ keeps it: AutoModel still loads the encoder
        export(loaded.lm or model, tokenizer, run_dir / "hf", used_pooling, eval_length)
        before, after = (module.evaluations[0], module.evaluations[-1]) if module.evaluations else (None, None)
        final = {"train/loss": float(trainer.callback_metrics.get("train/loss", float("nan")))}
        if after is not None and validation is not None:
            final.update({f"val/{validation.name}_spearman": after["spearman"],
                          f"val/{validation.name}_pearson": after["pearson"]})
        if after is not None:  # the objective's own held-out metrics
            final.update({f"val/{k}": v for k, v in after.items() if k not in ("step", "spearman", "pearson")})
        summary = {
            "run_dir": str(run_dir), "experiment": cfg.experiment, "seed": int(cfg.seed),
            "objective": str(c.name), "pooling": pooling, "pooling_used": used_pooling, "mlp": bool(c.mlp),
            "final": final, "steps": int(trainer.global_step), "examples_seen": module.examples_seen,
            "train_seconds": round(module.train_seconds, 3), "wall_seconds": round(time.time() - started, 3),
            "train_examples_per_s": module.examples_seen / module.train_seconds if module.train_seconds else None,
            "sts": {"data": validation.name if validation else None,
                    "source": validation.source if validation else None,
                    "before": before, "after": after, "history": module.evaluations},
            "model": str(path), "max_length": max_length, "eval_max_length": eval_length, "batch_size": batch_size,
            "parameters": sum(p.numel() for p in encoder.parameters()),
            "data": {"kind": kind, "source": data.source, **data.meta},
            **objective.describe(), **_repetition(collate), "hf": str(run_dir / "hf"),
        }
        return run.summarize(summary, final=final, step=summary["steps"])


def _repetition(collate) -> dict:
    if not collate.repeat:
        return {}
    return {"word_repetition": {"duplicated_tokens": collate.duplicated, "tokens": collate.tokens,
                                "share": collate.duplicated / collate.tokens if collate.tokens else None}}


def export(model, tokenizer, target: Path, pooling: str, max_length: int) -> None:
    """hf/: the encoder for AutoModel (and `nlpx eval sts`/`eval glue`), with the
    sentence-transformers module files where it has the pooling."""
    from nlpx.run.export import export_hf

    def sentence_transformers_files(folder: Path) -> None:
        mode = ST_POOLING.get(pooling)
        if mode is None:
            log.info("model.pooling=%s: sentence-transformers has no pooling over a pooler layer; hf/ has no "
                     "modules.json (load it with nlpx, or AutoModel and the pooler output)", pooling)
            return
        width = int(getattr(model.config, "hidden_size", None) or model.config.n_embd)
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}],
            indent=2) + "\n")
        (folder / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n")
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(
            {"word_embedding_dimension": width, **{m: m == mode for m in ST_POOLING.values()}}, indent=2) + "\n")

    export_hf(model, tokenizer, target, extra=sentence_transformers_files)
