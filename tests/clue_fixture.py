"""Tiny CLUE and FewCLUE folders in the official JSON-lines layouts, with the real files' quirks
(CRLF lines, no final newline, numeric labels in FewCLUE, OCNLI's "-" rows, raw U+2028 inside an
IFLYTEK text, CSLDCP's labels_all.txt, CLUEWSC's spans, ChID's #idiom# blank), and a learnable
signal: the label follows a marker word. Texts are English words so the English test tokenizer
reads them."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = "the cat dog sat on a mat ran far near house tree river stone light dark small big".split()
MARKS = ("never", "always", "maybe", "often")


def _sentence(rng: random.Random, label: int | None = None) -> str:
    words = rng.sample(WORDS, rng.randint(3, 7))
    if label is not None:
        words.insert(rng.randrange(len(words) + 1), MARKS[label])
    return " ".join(words)


def _write(path: Path, rows: list[dict], *, crlf: bool = False, final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    text = end.join(json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_bytes((text + (end if final_newline else "")).encode("utf-8"))


def _wsc_row(rng: random.Random, label: bool, i: int, id_key: str) -> dict:
    noun, pronoun = rng.choice(["cat", "dog", "tree"]), "it"
    # the label follows the word between the spans: "always" (true) or "never" (false)
    text = f"the {noun} {MARKS[1] if label else MARKS[0]} sat and {pronoun} ran"
    return {"target": {"span1_index": 4, "span1_text": noun, "span2_index": text.index(f" {pronoun} ") + 1,
                       "span2_text": pronoun}, id_key: i, "label": "true" if label else "false", "text": text}


def write_clue(root: Path, *, n: int = 24, seed: int = 0) -> Path:
    """afqmc (train, dev with idx, test), ocnli (dev with "-" rows and test, no train: CLUE's
    published layout) and cluewsc2020 (train, dev, test)."""
    rng = random.Random(seed)

    def pairs(split: str, count: int, labelled: bool = True, id_key: str = "id") -> list[dict]:
        rows = []
        for i in range(count):
            label = rng.randrange(2)
            row = {"sentence1": _sentence(rng), "sentence2": _sentence(rng, label if labelled else None)}
            if labelled:
                row["label"] = str(label)
            rows.append({**row, id_key: i})
        return rows

    _write(root / "afqmc" / "train.json", pairs("train", n))
    _write(root / "afqmc" / "dev.json", pairs("dev", n // 2, id_key="idx"), final_newline=False)
    _write(root / "afqmc" / "test.json", pairs("test", n // 4, labelled=False))
    nli = ["entailment", "neutral", "contradiction"]
    dev = [{"sentence1": _sentence(rng), "sentence2": _sentence(rng, i % 3), "label": nli[i % 3], "id": i}
           for i in range(n // 2)]
    dev[3]["label"] = "-"
    _write(root / "ocnli" / "dev.json", dev, final_newline=False)
    _write(root / "ocnli" / "test.json", [{"sentence1": _sentence(rng), "sentence2": _sentence(rng), "id": i}
                                          for i in range(n // 4)])
    for split, count in (("train", n), ("dev", n // 2)):
        _write(root / "cluewsc2020" / f"{split}.json",
               [_wsc_row(rng, rng.random() < 0.5, i, "idx") for i in range(count)], final_newline=False)
    test = [_wsc_row(rng, True, i, "id") for i in range(n // 4)]
    for row in test:
        del row["label"]
    _write(root / "cluewsc2020" / "test.json", test)
    return root


def write_fewclue(root: Path, *, n: int = 16, seed: int = 0) -> Path:
    """eprstmt (CRLF), tnews (numeric labels), iflytek (a raw U+2028 in a text), csldcp
    (labels_all.txt), ocnli ("-" rows), cluewsc and chid, each with train_few_all, dev_few_all and
    a labelled test_public."""
    rng = random.Random(seed)
    files = {"train": "train_few_all.json", "dev": "dev_few_all.json", "test": "test_public.json"}
    counts = {"train": n, "dev": n, "test": n}

    def single(task: str, labels: list, key: str = "sentence", crlf: bool = False, extra=None) -> None:
        for split, name in files.items():
            rows = []
            for i in range(counts[split]):
                k = rng.randrange(len(labels))
                rows.append({"id": i, key: _sentence(rng, k % len(MARKS)), "label": labels[k], **(extra or {})})
            _write(root / task / name, rows, crlf=crlf and split != "test")

    single("eprstmt", ["Negative", "Positive"], crlf=True)
    single("tnews", [100, 101], extra={"keywords": ""})
    single("iflytek", [0, 1, 2])
    iflytek = root / "iflytek" / "train_few_all.json"
    text = iflytek.read_text(encoding="utf-8")
    at = text.index(" ", text.index('"sentence": "') + len('"sentence": "'))  # a space inside the first text
    iflytek.write_text(text[:at] + "\u2028" + text[at + 1:], encoding="utf-8")
    (root / "csldcp").mkdir(parents=True)
    (root / "csldcp" / "labels_all.txt").write_text("材料科学与工程\n作物学\n", encoding="utf-8")
    single("csldcp", ["材料科学与工程", "作物学"], key="content")
    nli = ["entailment", "neutral", "contradiction"]
    for split, name in files.items():
        rows = [{"sentence1": _sentence(rng), "sentence2": _sentence(rng, i % 3), "label": nli[i % 3], "id": i}
                for i in range(counts[split])]
        rows[1]["label"] = "-"
        _write(root / "ocnli" / name, rows, crlf=split != "test")
        _write(root / "cluewsc" / name, [_wsc_row(rng, i % 2 == 0, i, "idx") for i in range(counts[split])],
               crlf=True)
        chid = []
        for i in range(counts[split]):
            candidates = rng.sample(WORDS, 4)
            answer = rng.randrange(4)
            chid.append({"id": i, "candidates": candidates, "answer": answer,
                         "content": f"{_sentence(rng)} #idiom# {candidates[answer]} {_sentence(rng)}"})
        _write(root / "chid" / name, chid)
    return root


def _labelled_rows(rng: random.Random, count: int, labels: list, make) -> list[dict]:
    rows = []
    for i in range(count):
        k = rng.randrange(len(labels))
        rows.append({**make(k), "label": labels[k], "id": i})
    return rows


def write_every_task(clue: Path, fewclue: Path, *, n: int = 16, seed: int = 1) -> None:
    """What write_clue and write_fewclue leave out (as ../shared/data does): CLUE tnews, iflytek,
    cmnli, csl and FewCLUE bustm, csl, each with train, dev and test files, and CLUE OCNLI's train."""
    rng = random.Random(seed)
    single = lambda k: {"sentence": _sentence(rng, k)}  # noqa: E731
    pair = lambda k: {"sentence1": _sentence(rng), "sentence2": _sentence(rng, k)}  # noqa: E731
    csl = lambda k: {"abst": _sentence(rng, k), "keyword": _sentence(rng).split()[:3]}  # noqa: E731
    tasks = {(clue, "tnews"): (["100", "101"], single), (clue, "iflytek"): (["0", "1", "2"], single),
             (clue, "cmnli"): (["entailment", "neutral", "contradiction"], pair), (clue, "csl"): (["0", "1"], csl),
             (fewclue, "bustm"): (["0", "1"], pair), (fewclue, "csl"): (["0", "1"], csl)}
    for (root, task), (labels, make) in tasks.items():
        names = (("train.json", "dev.json", "test.json") if root == clue else
                 ("train_few_all.json", "dev_few_all.json", "test_public.json"))
        for name in names:
            _write(root / task / name, _labelled_rows(rng, n, labels, make))
    # OCNLI's training file, which CLUE's folder in ../shared/data lacks
    _write(clue / "ocnli" / "train.json", _labelled_rows(rng, n, ["entailment", "neutral", "contradiction"], pair))
