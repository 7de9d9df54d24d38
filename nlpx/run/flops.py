"""Model FLOPs per token, achieved FLOP/s and MFU of a pretraining run.

FLOPs are counted, not estimated: torch.utils.flop_counter over one training step (forward and
backward of the run's own model and objective on its first batch), divided by the batch's
positions. For a dense transformer encoder with L layers of width d, FFN width f, sequence
length T and vocabulary V this is exactly

    6·N + 12·L·T·d + 6·(d·V + d²)·s,   N = L·(4d² + 2·d·f)

(the dense matmuls, attention's QKᵀ and AV, and the masked-LM head's transform and vocabulary
projection at the fraction s of positions the objective predicts: s = the masking ratio for MLM,
1 for a causal LM; tests/unit/test_flops.py checks it). Counting covers every objective (RTD's
generator and discriminator, SpanBERT's SBO head) without a formula per objective.

MFU = achieved FLOP/s / the device's peak: a table of common GPUs' dense bf16/fp16 tensor peaks,
used when the run trains in 16-bit precision; `trainer.peak_flops` gives it for anything else (a
CPU, fp32, a GPU not in the table).
"""

from __future__ import annotations

import torch

# dense (no sparsity) bf16/fp16 tensor-core peaks in FLOP/s, from the vendors' data sheets;
# the first name contained in torch.cuda.get_device_name() wins
PEAK_BF16 = (
    ("GH200", 989.4e12), ("H200", 989.4e12), ("H100 PCIe", 756.0e12), ("H100", 989.4e12),
    ("A100", 312.0e12), ("L40S", 362.1e12), ("L4", 121.0e12), ("A6000", 154.8e12), ("V100", 125.0e12),
)


def count_step_flops(step, params) -> float:
    """FLOPs of `step()` (a forward returning a loss) and its backward; the RNG and the gradients
    are left as they were, so counting does not change the run."""
    from torch.utils.flop_counter import FlopCounterMode

    params = [p for p in params if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:  # a backward accumulates into an existing .grad in place
        p.grad = None
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    # a compiled model (torch.compile) runs eagerly here: the same operations, which the counter
    # sees one by one, and no compilation of the counting itself
    with torch.compiler.set_stance("force_eager"), torch.random.fork_rng(devices=devices), \
            FlopCounterMode(display=False) as counter:
        step().backward()
    for p, g in zip(params, saved):
        p.grad = g
    return float(counter.get_total_flops())


def peak_flops(cfg) -> float | None:
    """trainer.peak_flops, else the table's entry for this GPU when the precision is 16-bit."""
    given = cfg.trainer.get("peak_flops")
    if given:
        return float(given)
    if not torch.cuda.is_available() or "16" not in str(cfg.trainer.precision):
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def summary(per_token: float | None, tokens: int, seconds: float, peak: float | None) -> dict:
    """The run's FLOPs entry for summary.json."""
    achieved = per_token * tokens / seconds if per_token and seconds > 0 else None
    return {"per_token": per_token, "achieved_per_s": achieved, "peak_per_s": peak,
            "mfu": achieved / peak if achieved and peak else None,
            "counted": "torch.utils.flop_counter over one training step (forward + backward), per position"}
