"""A large pretraining corpus for the scale benchmarks (not a benchmark itself): the shared
corpora's documents (Gutenberg books split at blank lines, WikiText-2 articles) repeated in a
shuffled order until the JSON-lines file reaches the size asked for. Built in a temporary folder,
never committed."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path


def shared_documents(data: Path) -> list[str]:
    docs = []
    for f in sorted((data / "corpus" / "gutenberg").glob("*.txt")):
        docs += [d.strip() for d in f.read_text(errors="replace").split("\n\n") if len(d.strip()) > 200]
    for f in sorted((data / "corpus" / "wikitext-2").glob("*.txt")):
        docs += [d.strip() for d in f.read_text(errors="replace").split("\n = ") if len(d.strip()) > 200]
    return docs


def build_corpus(path: Path, megabytes: float, data: Path | None = None, seed: int = 0) -> Path:
    """`path` (.jsonl) of about `megabytes` MB, one {"text": ...} record a document."""
    data = data or Path(os.environ.get("NLPX_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    docs = shared_documents(data)
    if not docs:
        raise SystemExit(f"no corpus under {data}/corpus: set NLPX_DATA")
    rng, target, written = random.Random(seed), int(megabytes * 1e6), 0
    with open(path, "w") as f:
        while written < target:
            rng.shuffle(docs)
            for d in docs:
                line = json.dumps({"text": d}) + "\n"
                f.write(line)
                written += len(line.encode())
                if written >= target:
                    break
    return path
