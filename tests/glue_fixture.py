"""A tiny GLUE folder in the official layout, every task and AX, with the real files' quirks
(CoLA without header and final newline, MRPC's BOM, MNLI's parse columns, a U+FEFF in QNLI),
and a learnable signal: the label follows a marker word, so fine-tuning has something to find."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = "the cat dog sat on a mat ran far near house tree river stone light dark small big".split()
MARK = {0: "never", 1: "always", 2: "maybe"}
COUNTS = {"train": 48, "dev": 24, "test": 12}

MNLI_TRAIN = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")
MNLI_DEV = MNLI_TRAIN[:10] + ("label1", "label2", "label3", "label4", "label5", "gold_label")
MNLI_TEST = MNLI_TRAIN[:10]
NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")


def _sentence(rng: random.Random, label: int | None = None) -> str:
    words = rng.sample(WORDS, rng.randint(3, 8))
    if label is not None:
        words.insert(rng.randrange(len(words) + 1), MARK[label])
    return " ".join(words).capitalize() + "."


def _tsv(rows) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def write_glue(root: Path, *, counts: dict[str, int] | None = None, seed: int = 0,
               tasks: tuple[str, ...] = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax")) -> Path:
    counts = {**COUNTS, **(counts or {})}
    rng = random.Random(seed)
    files: dict[str, str | bytes] = {}

    def labelled(n_classes: int, split: str):
        for i in range(counts[split]):
            y = rng.randrange(n_classes)
            yield i, y, _sentence(rng, y), _sentence(rng)

    for split in ("train", "dev"):
        if "cola" in tasks:  # no header row; the dev file also lacks its final newline
            text = _tsv(("gj04", y, "" if y else "*", a) for _, y, a, _ in labelled(2, split))
            files[f"CoLA/{split}.tsv"] = text[:-1] if split == "dev" else text
        if "sst2" in tasks:
            files[f"SST-2/{split}.tsv"] = _tsv([("sentence", "label")] + [(a + " ", y) for _, y, a, _ in labelled(2, split)])
        if "mrpc" in tasks:  # a UTF-8 BOM before the header
            files[f"MRPC/{split}.tsv"] = b"\xef\xbb\xbf" + _tsv(
                [("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")]
                + [(y, 1000 + i, 2000 + i, a, b) for i, y, a, b in labelled(2, split)]).encode()
        if "stsb" in tasks:
            rows = [("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                     "sentence2", "score")]
            for i in range(counts[split]):
                score = round(rng.uniform(0, 5), 3)
                y = 1 if score > 2.5 else 0
                rows.append((i, "main-news", "f", "2012", i, "none", "none", _sentence(rng, y), _sentence(rng), score))
            files[f"STS-B/{split}.tsv"] = _tsv(rows)
        if "qqp" in tasks:
            files[f"QQP/{split}.tsv"] = _tsv([("id", "qid1", "qid2", "question1", "question2", "is_duplicate")]
                                             + [(i, 2 * i, 2 * i + 1, a, b, y) for i, y, a, b in labelled(2, split)])
        if "qnli" in tasks:
            rows = [(i, a, b.replace(" ", " \ufeff", 1) if i == 0 else b, NLI2[y]) for i, y, a, b in labelled(2, split)]
            files[f"QNLI/{split}.tsv"] = _tsv([("index", "question", "sentence", "label")] + rows)
        for task, folder in (("rte", "RTE"), ("wnli", "WNLI")):
            if task in tasks:
                labels = NLI2 if task == "rte" else ("0", "1")
                files[f"{folder}/{split}.tsv"] = _tsv([("index", "sentence1", "sentence2", "label")]
                                                      + [(i, a, b, labels[y]) for i, y, a, b in labelled(2, split)])
    if "mnli" in tasks:
        def mnli_rows(split, header):
            rows = [header]
            for i, y, a, b in labelled(3, split):
                parse = (f"( {a} )", f"( {b} )", f"(ROOT {a})", f"(ROOT {b})")
                golds = (NLI3[y],) if header is MNLI_TRAIN else (NLI3[y],) * 5
                rows.append((i, 100 + i, f"{i}n", "fiction", *parse, a, b, *golds, NLI3[y]))
            return _tsv(rows)
        files["MNLI/train.tsv"] = mnli_rows("train", MNLI_TRAIN)
        files["MNLI/dev_matched.tsv"] = mnli_rows("dev", MNLI_DEV)
        files["MNLI/dev_mismatched.tsv"] = mnli_rows("dev", MNLI_DEV)
        for name in ("test_matched", "test_mismatched"):
            files[f"MNLI/{name}.tsv"] = _tsv([MNLI_TEST] + [
                (i, 1, f"{i}n", "fiction", "(", "(", "(", "(", _sentence(rng), _sentence(rng))
                for i in range(counts["test"])])
    # test splits: unlabelled, keyed by an index column (QQP: id)
    singles = {"cola": "CoLA", "sst2": "SST-2"}
    pairs = {"qnli": ("QNLI", "question", "sentence"), "rte": ("RTE", "sentence1", "sentence2"),
             "wnli": ("WNLI", "sentence1", "sentence2"), "ax": ("diagnostic", "sentence1", "sentence2")}
    n = counts["test"]
    for task, folder in singles.items():
        if task in tasks:
            files[f"{folder}/test.tsv"] = _tsv([("index", "sentence")] + [(i, _sentence(rng)) for i in range(n)])
    for task, (folder, a, b) in pairs.items():
        if task in tasks:
            name = "diagnostic.tsv" if task == "ax" else "test.tsv"
            files[f"{folder}/{name}"] = _tsv([("index", a, b)] + [(i, _sentence(rng), _sentence(rng)) for i in range(n)])
    if "mrpc" in tasks:
        files["MRPC/test.tsv"] = _tsv([("index", "#1 ID", "#2 ID", "#1 String", "#2 String")]
                                      + [(i, 1, 2, _sentence(rng), _sentence(rng)) for i in range(n)])
    if "stsb" in tasks:
        files["STS-B/test.tsv"] = _tsv([("index", "genre", "filename", "year", "old_index", "source1", "source2",
                                         "sentence1", "sentence2")]
                                       + [(i, "g", "f", "2012", i, "n", "n", _sentence(rng), _sentence(rng)) for i in range(n)])
    if "qqp" in tasks:
        files["QQP/test.tsv"] = _tsv([("id", "question1", "question2")] + [(i, _sentence(rng), _sentence(rng)) for i in range(n)])
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root
