"""Masked-LM loss and attention entropy of a checkpoint at several sequence lengths (`nlpx eval mlm`).

At each length L of eval.lengths the common evaluation set (nlpx/data/common_eval.py: the
held-out documents packed as full sentences into L tokens, masked once at 15% with 80/10/10 from a
fixed seed) is cut to its first ⌈eval.tokens / L⌉ examples, so every length scores about the same
stretch of held-out text from its start; what changes is how much context each prediction sees.
Per length:

  mlm_loss, mlm_acc     cross-entropy and accuracy over the masked positions (token-weighted)
  attention_entropy     per layer: the mean over heads and real (non-padding) queries of the
                        entropy −Σ_j p_ij log p_ij of the query's attention weights (natural log),
                        the weights renormalised to sum to 1 (GAU's relu² attention is not a
                        distribution; softmax rows are unchanged by it)
  uniform_entropy       the mean over those queries of log(its row's real keys): the entropy of
                        uniform attention over them, the ceiling to read the entropies against
                        (an attention pattern lets a query attend fewer)

The entropy-invariance claim of the log_n scale is that its entropies stay level as L grows past
the training length where 1/√d's grow. Positions past the training length are untrained for a
learned absolute table (`beyond_training_length` marks those rows, and the report says so):
compare extrapolation on rotary, sinusoidal or relative positions only.
"""

from __future__ import annotations

import math

import numpy as np


def position_kind(config) -> str:
    """learned | sinusoidal | rotary | relative: how the checkpoint encodes positions."""
    if config.model_type in ("roformer", "nlpx_gau"):
        return "rotary"
    if config.model_type == "deberta-v2" and not getattr(config, "position_biased_input", True):
        return "relative"
    return str(getattr(config, "nlpx_position_embedding", "learned"))


def evaluate_length(model, arrays: dict[str, np.ndarray], *, batch_size: int, device, entropy: bool) -> dict:
    """Loss, accuracy and (entropy=True) per-layer attention entropy of `model` on one length's set."""
    import torch
    import torch.nn.functional as F

    from nlpx.data.common_eval import batches

    loss_sum, correct, masked, tokens = 0.0, 0, 0, 0
    ent_sum: list[float] = []
    uniform_sum, queries = 0.0, 0
    with torch.inference_mode():
        for b in batches(arrays, batch_size, device):
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                        token_type_ids=b["token_type_ids"], output_attentions=entropy)
            selected = b["labels"] != -100
            logits = out.logits[selected].float()
            targets = b["labels"][selected]
            loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
            correct += int((logits.argmax(-1) == targets).sum())
            masked += int(targets.numel())
            real = b["attention_mask"].bool()
            tokens += int(real.sum())
            if not entropy:
                continue
            attentions = out.attentions
            if not attentions or any(a is None for a in attentions):
                raise RuntimeError(f"{type(model).__name__} returned no attention weights")
            if not ent_sum:
                ent_sum = [0.0] * len(attentions)
            keys = real.sum(-1).float()  # every real query of a row may attend its real keys
            for i, a in enumerate(attentions):
                p = a.float()
                if p.dim() == 3:  # GAU: one head, [B, T, T]
                    p = p[:, None]
                p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
                h = -(p * p.clamp_min(1e-30).log()).sum(-1)            # [B, heads, T]
                ent_sum[i] += float((h * real[:, None, :]).sum() / p.shape[1])
            uniform_sum += float((keys.log() * keys).sum())
            queries += int(real.sum())
    result = {"examples": int(len(arrays["lengths"])), "tokens": tokens, "masked": masked,
              "mlm_loss": loss_sum / max(masked, 1), "mlm_acc": correct / max(masked, 1)}
    if entropy:
        result["attention_entropy"] = [s / max(queries, 1) for s in ent_sum]
        result["uniform_entropy"] = uniform_sum / max(queries, 1)
    return result


def examples_for(length: int, tokens: int) -> int:
    return max(1, math.ceil(tokens / length))


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    layers = max((len(r.get("attention_entropy", [])) for r in report["lengths"]), default=0)
    header = ["length", "examples", "masked", "MLM loss", "MLM acc", "uniform H",
              *[f"H layer {i + 1}" for i in range(layers)]]
    rows = []
    for r in report["lengths"]:
        flag = " *" if r["beyond_training_length"] and report["positions"] == "learned" else ""
        rows.append([f"{r['length']}{flag}", str(r["examples"]), str(r["masked"]), f"{r['mlm_loss']:.4f}",
                     f"{r['mlm_acc']:.4f}", f"{r['uniform_entropy']:.3f}" if "uniform_entropy" in r else "-",
                     *[f"{h:.3f}" for h in r.get("attention_entropy", [])]])
    return header, rows


def notes(report: dict) -> list[str]:
    lines = [f"positions: {report['positions']}; attention scale: {report['attention_scale']}; trained at "
             f"length {report['training_length'] if report['training_length'] else 'unknown'}",
             "H: mean attention entropy (nats) per layer over heads and real queries; uniform H: mean log(keys)"]
    if report["positions"] == "learned" and any(r["beyond_training_length"] for r in report["lengths"]):
        lines.append("* past the training length: a learned position table's rows there are untrained, so "
                     "these rows measure that, not the attention scale")
    return lines


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    out = [f"# MLM loss by length: {report['model']}", "", "| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out + [""] + [f"- {line}" for line in notes(report)]) + "\n"


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    header, rows = table_rows(report)
    show("MLM loss and attention entropy by sequence length", header, rows,
         [f"model: {report['model']}", *notes(report), f"run directory: {report['run_dir']}"])
