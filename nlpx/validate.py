"""The one validation step every composed config goes through (`nlpx train`, `eval glue`, `eval
sts`, each job of a multirun and each cell of an ablation, all before anything runs): ranges,
choices and the rules that tie two keys together. Types are the structured-config schemas' (Hydra,
in nlpx/config.py); what a schema cannot say (a positive learning rate, heads dividing the hidden
size, a sequence that fits the position table, a name that is one path component) is here, so a
bad value is one line and exit 2 before a run directory exists, not a traceback mid-run.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real

from nlpx.errors import UserError

WANDB_MODES = ("offline", "online", "disabled")
PLM_FORMATS = ("full_sentences", "doc_sentences")


def validate(cfg, *, runnable: bool = True) -> None:
    """runnable: also what this machine must have (a GPU for trainer.accelerator=gpu)."""
    for check in (_names, _seed, _optim, _budget, _batches, _trainer, _logger, _model, _positions,
                  _masking, _word_segmenter, _permutation, _embedding, _eval):
        check(cfg)
    if runnable:
        check_hardware(cfg)


def _get(cfg, key: str):
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=None)


def _number(key: str, value, *, integer: bool = False, minimum=None, above=None, maximum=None,
            why: str = "") -> None:
    """value must be a (finite) number of the kind and range given; None means unset and passes."""
    if value is None:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, Integral if integer else Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (above is None or value > above) \
        and (maximum is None or value <= maximum)
    if not ok:
        bounds = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
                  f"<= {maximum}" if maximum is not None else ""]
        rule = " and ".join(b for b in bounds if b)
        raise UserError(f"{key}={value}: must be {kind}{' ' + rule if rule else ''}{why}")


def _names(cfg) -> None:
    """experiment and run_id name one folder each under runs_dir: never a path that leaves it."""
    for key in ("experiment", "run_id"):
        value = _get(cfg, key)
        if value is None and key == "run_id":
            continue
        text = str(value)
        if not text or text in (".", "..") or any(c in text for c in "/\\\0"):
            raise UserError(f"{key}={value}: must be one folder name (no '/', not '.' or '..'); "
                            f"runs go to runs_dir/experiment/run_id")


def _seed(cfg) -> None:
    _number("seed", _get(cfg, "seed"), integer=True, minimum=0)


def _optim(cfg) -> None:
    lr = _get(cfg, "optim.lr")
    if lr == 0:
        raise UserError("optim.lr=0: nothing would train; give a positive learning rate")
    _number("optim.lr", lr, above=0)
    _number("optim.warmup", _get(cfg, "optim.warmup"), minimum=0)
    _number("optim.weight_decay", _get(cfg, "optim.weight_decay"), minimum=0)
    _number("optim.eps", _get(cfg, "optim.eps"), above=0)
    betas = _get(cfg, "optim.betas")
    if betas is not None and (len(betas) != 2 or not all(isinstance(b, Real) and 0 <= b < 1 for b in betas)):
        raise UserError(f"optim.betas={list(betas)}: give two numbers in [0, 1), e.g. [0.9, 0.999]")


def _budget(cfg) -> None:
    none = " (null: no limit of this kind)"
    for key in ("max_steps", "max_epochs", "max_tokens"):
        _number(f"budget.{key}", _get(cfg, f"budget.{key}"), integer=True, minimum=1, why=none)


def _batches(cfg) -> None:
    _number("data.tokenizer_sample_bytes", _get(cfg, "data.tokenizer_sample_bytes"), integer=True, minimum=1,
            why=" (null: the whole corpus)")
    _number("data.tokenize_workers", _get(cfg, "data.tokenize_workers"), integer=True, minimum=1,
            why=" (null: one per CPU)")
    for key in ("data.batch_size", "data.seq_len", "task.batch_size", "task.bucket_window", "task.max_length", "objective.batch_size",
                "objective.max_length", "objective.eval_batch_size", "objective.min_words", "eval.batch_size",
                "eval.max_length"):
        _number(key, _get(cfg, key), integer=True, minimum=1)


def _trainer(cfg) -> None:
    for key in ("accumulate_grad_batches", "val_check_interval", "log_every_n_steps",
                "checkpoint_every_n_steps"):
        _number(f"trainer.{key}", _get(cfg, f"trainer.{key}"), integer=True, minimum=1)
    _number("trainer.gradient_clip_val", _get(cfg, "trainer.gradient_clip_val"), above=0)
    _number("trainer.checkpoint_every_minutes", _get(cfg, "trainer.checkpoint_every_minutes"), above=0)
    _number("trainer.keep_checkpoints", _get(cfg, "trainer.keep_checkpoints"), integer=True, minimum=1)
    _number("trainer.peak_flops", _get(cfg, "trainer.peak_flops"), above=0)
    precision = _get(cfg, "trainer.precision")
    if precision is not None:
        valid = precisions()
        if str(precision) not in valid:
            raise UserError(f"trainer.precision={precision}: unknown (valid: {', '.join(valid)})")


def check_hardware(cfg) -> None:
    """What the config needs of this machine."""
    accelerator = _get(cfg, "trainer.accelerator")
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"trainer.accelerator={accelerator}: this machine has no CUDA GPU "
                            "(use trainer=cpu, or trainer.accelerator=auto)")


def precisions() -> list[str]:
    """Lightning's own list of precision settings (names, aliases and the integer forms)."""
    import typing

    from lightning.fabric import connector

    names = [*typing.get_args(connector._PRECISION_INPUT_STR), *typing.get_args(connector._PRECISION_INPUT_STR_ALIAS)]
    return [*names, *(str(i) for i in typing.get_args(connector._PRECISION_INPUT_INT))]


def _logger(cfg) -> None:
    mode = _get(cfg, "logger.mode")
    if mode is not None and mode not in WANDB_MODES:
        raise UserError(f"logger.mode={mode}: unknown (valid: {', '.join(WANDB_MODES)})")


def _model(cfg) -> None:
    """A new model's shape; a checkpoint's (model.pretrained) is its config.json's."""
    from nlpx.model_options import GAU_ATTENTIONS, PATTERNS, SCALES

    gau_attention = _get(cfg, "model.gau_attention")  # first: model=gau's attention_scale interpolates it
    if gau_attention is not None and gau_attention not in GAU_ATTENTIONS:
        raise UserError(f"model.gau_attention={gau_attention}: not valid (valid: {', '.join(GAU_ATTENTIONS)})")
    scale = _get(cfg, "model.attention_scale")
    if gau_attention == "relu2":
        if scale != "none":
            raise UserError(f"model.attention_scale={scale}: model.gau_attention=relu2 has no softmax to scale "
                            "(relu²(QKᵀ/n + b)); leave model.attention_scale unset (valid with relu2: none)")
    elif scale is not None and scale not in SCALES:
        raise UserError(f"model.attention_scale={scale}: not valid (valid: {', '.join(SCALES)})")
    if scale == "log_n":
        _number("model.scale_train_length", _get(cfg, "model.scale_train_length"), integer=True, minimum=2)
    pattern = _get(cfg, "model.attention_pattern")
    if pattern is not None and pattern not in PATTERNS:
        raise UserError(f"model.attention_pattern={pattern}: not valid (valid: {', '.join(PATTERNS)})")
    if pattern not in (None, "full"):
        _number("model.window", _get(cfg, "model.window"), integer=True, minimum=1)
        _number("model.dilation", _get(cfg, "model.dilation"), integer=True, minimum=1)
        _number("model.global_tokens", _get(cfg, "model.global_tokens"), integer=True, minimum=0)
    if _get(cfg, "model.pretrained") or _get(cfg, "model.hidden_size") is None:
        return
    hidden, heads = _get(cfg, "model.hidden_size"), _get(cfg, "model.num_attention_heads")
    _number("model.hidden_size", hidden, integer=True, minimum=1)
    _number("model.num_hidden_layers", _get(cfg, "model.num_hidden_layers"), integer=True, minimum=1)
    _number("model.num_attention_heads", heads, integer=True, minimum=1)
    _number("model.max_position_embeddings", _get(cfg, "model.max_position_embeddings"), integer=True, minimum=1)
    if heads is not None and hidden % heads:
        raise UserError(f"model.num_attention_heads={heads}: must divide model.hidden_size={hidden} "
                        f"(valid: {', '.join(str(h) for h in range(1, hidden + 1) if hidden % h == 0 and h <= 64)})")


def _positions(cfg) -> None:
    """Sequences no longer than the model's position table (learned positions index it)."""
    table, where = _position_table(cfg)
    if table is None:
        return
    for key in ("data.seq_len", "task.max_length", "objective.max_length", "eval.max_length"):
        value = _get(cfg, key)
        if isinstance(value, Integral) and value > table:
            raise UserError(f"{key}={value}: longer than the {table} positions of {where}")


def _position_table(cfg) -> tuple[int | None, str]:
    """(positions, what has them); None where only relative positions are used (any length)."""
    pretrained = _get(cfg, "model.pretrained")
    if pretrained:
        from nlpx.pretrained import resolve_pretrained

        try:
            folder = resolve_pretrained(pretrained)
        except UserError:  # a path not made yet (an ablation's later stage); the command checks it
            return None, ""
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") == "deberta-v2" and not config.get("position_biased_input", True):
            return None, ""
        n = config.get("max_position_embeddings") or config.get("n_positions")
        if n and config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
            n -= int(config.get("pad_token_id", 1)) + 1  # positions start after the padding index
        return n, f"model.pretrained={pretrained}"
    if _get(cfg, "model.position_embedding") == "relative" and not _get(cfg, "model.position_biased_input"):
        return None, ""
    return _get(cfg, "model.max_position_embeddings"), "the model (model.max_position_embeddings)"


def _masking(cfg) -> None:
    """The masking recipe's own checks (ratio, 80/10/10 shares), run here so that a multirun or an
    ablation finds a bad value before its first job."""
    masking = _get(cfg, "objective.masking")
    if masking is None:
        return
    from omegaconf import OmegaConf

    from nlpx.data.masking import MaskingConfig

    fields = OmegaConf.to_container(masking, resolve=True)
    known = set(MaskingConfig.__dataclass_fields__)
    MaskingConfig(**{k: v for k, v in fields.items() if k in known})


def _word_segmenter(cfg) -> None:
    """data.word_segmenter only changes which tokens start a word: read by whole-word and span
    masking and by XLNet's span targets, by nothing else."""
    name = _get(cfg, "data.word_segmenter")
    if name is None:
        return
    from nlpx.data.segmenters import segmenter

    segmenter(name)
    strategy = _get(cfg, "objective.masking.strategy")
    if strategy in ("token", "none") or (strategy is None and _get(cfg, "objective.plm_k") is None):
        raise UserError(f"data.word_segmenter={name}: not read with objective.masking.strategy={strategy} (word "
                        "boundaries are read by strategy=whole_word or span, and by objective=plm)")


def _permutation(cfg) -> None:
    """objective=plm's own settings (XLNet's permutation LM): the objectives that have them."""
    objective = _get(cfg, "objective")
    if objective is None or "plm_k" not in objective:
        return
    for key, minimum, why in (
            ("plm_k", 2, " (the targets are the last 1/K of each order; K=1 would predict every token with no context)"),
            ("max_span_length", 1, " (words in the longest target n-gram)")):
        value = _get(cfg, f"objective.{key}")
        _number(f"objective.{key}", "null" if value is None else value, integer=True, minimum=minimum, why=why)
    mode = _get(cfg, "objective.mode")
    if mode not in ("dynamic", "static"):
        raise UserError(f"objective.mode={mode}: unknown (valid: dynamic, static)")
    fmt = _get(cfg, "objective.format")
    if fmt not in PLM_FORMATS:
        raise UserError(f"objective.format={fmt}: objective=plm reads {' or '.join(PLM_FORMATS)} "
                        "(it has no sentence-pair head to train on pairs)")


def _embedding(cfg) -> None:
    """The contrastive objectives' own numbers (SimCSE, ESimCSE, AnglE)."""
    _number("objective.temperature", _get(cfg, "objective.temperature"), above=0)
    for key in ("momentum", "dup_rate"):
        _number(f"objective.{key}", _get(cfg, f"objective.{key}"), minimum=0)
    _number("objective.positive_min", _get(cfg, "objective.positive_min"))
    _number("objective.queue_size", _get(cfg, "objective.queue_size"), integer=True, minimum=0,
            why=" (a number of embeddings; 0: no queue)")


EVAL_MODES = ("finetune", "zeroshot_nsp", "zeroshot_mlm")


def _eval(cfg) -> None:
    mode = _get(cfg, "eval.mode")
    if mode is not None and mode not in EVAL_MODES:
        raise UserError(f"eval.mode={mode}: unknown (valid: {', '.join(EVAL_MODES)})")
    seeds = _get(cfg, "eval.seeds")
    if seeds is not None:
        from omegaconf import ListConfig

        if not isinstance(seeds, (list, ListConfig)) or not seeds or \
                not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise UserError(f"eval.seeds={seeds}: give a list of integers >= 0, e.g. eval.seeds=[0,1,2]")
