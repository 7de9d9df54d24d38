"""LoRA through peft: low-rank adapters on the attention projections, the task head trained in full.

peft (0.21) with task_type SEQ_CLS adds `classifier` and `score` to `modules_to_save` by itself, but
nothing else: a pooler that sits between the encoder and the classifier (BERT, ALBERT, DeBERTa-v2)
would stay frozen at its pretrained (or random) values and be left out of the saved adapter
(peft issues #310, #1070). HEADS therefore lists the whole head of each family, pooler included.
"""

from __future__ import annotations

import logging
from pathlib import Path

import peft
import torch
from transformers.pytorch_utils import Conv1D

from nlpx.errors import UserError
from nlpx.tricks.base import Trick

log = logging.getLogger("nlpx")

# the attention query and value projections (the LoRA paper's choice), as the installed
# transformers names them; GPT-2 fuses q, k and v into one Conv1D, so its adapter covers all three
TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "roformer": ["query", "value"],
    "gpt2": ["c_attn"],
    "nlpx_gau": ["i_dense"],  # GAU: U, V and Z (so Q and K) come from one projection, as GPT-2's c_attn
    "longformer": ["query", "value"],  # the local projections; query_global / value_global stay frozen
    "big_bird": ["query", "value"],
    # XLNet's q, k, v, o are bare parameters, not layers peft can wrap: its feed-forward layers instead
    "xlnet": ["layer_1", "layer_2"],
}

# modules trained in full and saved with the adapter: everything from the encoder's output to the
# logits. RoBERTa is built without its pooler (RobertaClassificationHead pools by itself).
HEADS: dict[str, list[str]] = {
    "bert": ["classifier", "bert.pooler"],
    "roberta": ["classifier"],
    "deberta-v2": ["pooler", "classifier"],
    "electra": ["classifier"],
    "albert": ["classifier", "albert.pooler"],
    "roformer": ["classifier"],
    "gpt2": ["score"],
    "nlpx_gau": ["classifier"],
    "longformer": ["classifier"],
    "big_bird": ["classifier"],
    "xlnet": ["sequence_summary", "logits_proj"],
}

KEY = "trick.lora.target_modules"
# the layer types peft's LoRA wraps (peft.tuners.lora.model.LoraModel._create_new_module)
ADAPTABLE = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
             torch.nn.MultiheadAttention, Conv1D)


def _matches(name: str, target: str) -> bool:
    # peft's own rule for a list of target names (BaseTuner._check_target_module_exists)
    return name == target or name.endswith("." + target)


def _heads(model) -> list[str]:
    """HEADS for a known family; otherwise every top-level module besides the encoder, plus the
    encoder's pooler when it has one (DistilBERT's pre_classifier, for one, is head, not encoder)."""
    if model.config.model_type in HEADS:
        return list(HEADS[model.config.model_type])
    prefix = model.base_model_prefix
    heads = [name for name, child in model.named_children()
             if name != prefix and next(child.parameters(), None) is not None]
    if isinstance(getattr(getattr(model, prefix, None), "pooler", None), torch.nn.Module):
        heads.append(f"{prefix}.pooler")
    return heads


def _targets(model, cfg) -> list[str]:
    model_type = model.config.model_type
    targets = cfg.get("target_modules")
    if targets is None:
        if model_type not in TARGETS:
            raise UserError(f"{KEY}: no default LoRA targets for model type {model_type!r}; set {KEY} "
                            f"(defaults exist for: {', '.join(sorted(TARGETS))})")
        return list(TARGETS[model_type])
    targets = [targets] if isinstance(targets, str) else [str(t) for t in targets]
    # peft only fails when no name matches at all; a misspelt second name would be dropped silently
    modules = list(model.named_modules())
    for target in targets:
        found = [module for name, module in modules if _matches(name, target)]
        if not found:
            leaves = sorted({name.rpartition(".")[2] for name, module in modules
                             if isinstance(module, (torch.nn.Linear, Conv1D))})
            raise UserError(f"{KEY}: {target!r} matches no module of the {model_type} model "
                            f"(its linear layers: {', '.join(leaves)})")
        blocks = sorted({type(m).__name__ for m in found if not isinstance(m, ADAPTABLE)})
        if blocks:  # peft's own error prints the whole block
            raise UserError(f"{KEY}: {target!r} names {', '.join(blocks)}, not a layer LoRA can adapt "
                            "(Linear, Conv1D, Embedding, ConvNd)")
    return targets


def apply_lora(model, cfg):
    """Wrap a transformers *ForSequenceClassification model: the base is frozen, the LoRA matrices
    and the head (HEADS) train. The model is modified in place; the peft model is returned."""
    targets = _targets(model, cfg)
    heads = _heads(model)
    names = {name for name, _ in model.named_modules()}
    missing = [head for head in heads if head not in names]
    if missing:  # HEADS out of date with the installed transformers: a bug, not a user error
        raise RuntimeError(f"LoRA head modules {missing} not in {type(model).__name__}")
    # Conv1D stores its weight transposed; peft would flip this itself, with a warning
    conv1d = any(isinstance(module, Conv1D) and any(_matches(name, t) for t in targets)
                 for name, module in model.named_modules())
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS, r=int(cfg["r"]), lora_alpha=cfg["alpha"],
        lora_dropout=float(cfg["dropout"]), bias="none", target_modules=targets,
        modules_to_save=heads, fan_in_fan_out=conv1d)
    return peft.get_peft_model(model, config)


def trainable_counts(model) -> tuple[int, int]:
    """(trainable parameters, all parameters); parameters() yields a shared tensor once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged(peft_model):
    """The plain transformers model: adapters merged into the weights, the trained head copies in
    place of the originals. Consumes peft_model (its base model is unwrapped in place)."""
    return peft_model.merge_and_unload()


def save_adapter(peft_model, folder) -> None:
    """adapter_config.json + adapter_model.safetensors: the LoRA matrices and the head/pooler;
    load with peft.PeftModel.from_pretrained(fresh_base_model, folder)."""
    peft_model.save_pretrained(str(folder))


class LoRA(Trick):
    """trick=lora: the model becomes a peft model; hf/ gets the merged plain model, adapter/ the
    adapter alone (with the head). LoRA needs a higher learning rate than full fine-tuning: selecting
    it presets optim.lr (conf/trick/_lora_optim.yaml)."""

    name = "lora"
    order = 30

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        self.counts: tuple[int, int] | None = None

    def problem(self):
        if self.task.token_level:
            return "its adapters and saved head are set up for sequence classifiers, not a token-level objective (objective=tag, qa)"
        if self.task.model_type not in TARGETS and not self.cfg.get("target_modules"):
            return f"no default LoRA targets for model type {self.task.model_type}; set {KEY}"
        return None

    def prepare_model(self, model):
        model = apply_lora(model, self.cfg)
        self.counts = trainable_counts(model)
        log.info("LoRA: %s of %s parameters train (%.2f%%)", f"{self.counts[0]:,}", f"{self.counts[1]:,}",
                 100 * self.fraction)
        return model

    @property
    def fraction(self) -> float:
        return self.counts[0] / self.counts[1] if self.counts else float("nan")

    def save(self, model, run_dir):
        if self.cfg.get("save_adapter", True):
            save_adapter(model, Path(run_dir) / "adapter")

    def export_model(self, model):
        return merged(model)

    def describe(self):
        return {} if self.counts is None else {
            "trainable": self.counts[0], "parameters": self.counts[1], "trainable_fraction": self.fraction}

    def metrics(self):
        return {"trainable_fraction": self.fraction}
