"""Memory of a corpus cache build against corpus size: the peak anonymous memory (RssAnon: what
the process allocates, not the page cache or memory-mapped file pages) while nlpx builds the cache
of a ~200 MB and a ~1 GB corpus (the shared corpora's documents repeated in shuffled order, in a
temporary folder), each in a fresh process that samples /proc/self/status every 50 ms. The
vocabulary is trained on a bounded sample (data.tokenizer_sample_bytes) so that both builds run
the whole path. Target: the two peaks within 15% of each other.

.venv/bin/python benchmarks/cache_memory.py [--sizes 200 1000] [--sample-mb 20] [--vocab 16000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import build_corpus  # noqa: E402
from _util import REPO, print_table, write_result  # noqa: E402

CHILD = r"""
import json, sys, threading, time
from pathlib import Path

peak = {"anon": 0}
def rss_anon_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0
def watch():
    while True:
        peak["anon"] = max(peak["anon"], rss_anon_kb())
        time.sleep(0.05)

from nlpx.config import compose
from nlpx.data.prepare import prepare_corpus
cfg = compose(["data=text", f"data.paths=[{sys.argv[1]}]", f"data.cache_dir={sys.argv[2]}", f"data.vocab_size={sys.argv[3]}",
               f"data.tokenizer_sample_bytes={sys.argv[4]}", "data.val_fraction=0.01"])
baseline = rss_anon_kb()
threading.Thread(target=watch, daemon=True).start()
start = time.perf_counter()
p = prepare_corpus(cfg)
seconds = time.perf_counter() - start
time.sleep(0.1)
print(json.dumps({"peak_rss_anon_mb": peak["anon"] / 1024, "before_build_rss_anon_mb": baseline / 1024,
                  "seconds": seconds, "train_tokens": int(p.meta["train_tokens"]), "documents": int(p.meta["documents"])}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[200, 1000], help="corpus sizes in MB")
    ap.add_argument("--sample-mb", type=float, default=20, help="data.tokenizer_sample_bytes, in MB")
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nlpx-mem-bench-"))
    rows, runs = [], []
    try:
        for size in args.sizes:
            corpus = build_corpus(work / f"corpus-{int(size)}.jsonl", size)
            out = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(work / f"cache-{int(size)}"),
                                  str(args.vocab), str(int(args.sample_mb * 1e6))], cwd=REPO, capture_output=True,
                                 text=True, check=True)
            result = {"corpus_mb": round(corpus.stat().st_size / 1e6, 1), **json.loads(out.stdout.strip().splitlines()[-1])}
            runs.append(result)
            rows.append([f"{result['corpus_mb']:.0f} MB", f"{result['peak_rss_anon_mb']:.0f}",
                         f"{result['before_build_rss_anon_mb']:.0f}", f"{result['seconds']:.0f}",
                         f"{result['corpus_mb'] / result['seconds']:.2f}"])
            print(result, flush=True)
            shutil.rmtree(work / f"cache-{int(size)}", ignore_errors=True)
            corpus.unlink()
        print_table(["corpus", "peak RssAnon MB", "before build MB", "seconds", "MB/s"], rows)
        peaks = [r["peak_rss_anon_mb"] for r in runs]
        spread = max(peaks) / min(peaks) - 1
        print(f"largest / smallest peak: +{100 * spread:.1f}% (target: within 15%)")
        write_result("cache_memory", {"settings": vars(args), "runs": runs, "peak_spread_pct": round(100 * spread, 1),
                                      "time": time.strftime("%H:%M:%S")}, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
