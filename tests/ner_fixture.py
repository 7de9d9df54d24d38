"""Small tagging files in CoNLL-2003's and CLUENER's layouts, with entities a model can learn: the
synthetic language's sentences with some nouns tagged by topic (one type per topic, its first two
nouns the type's words; "the" before such a noun is part of the entity, other determiners are not)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from nlpx.data.synthetic import SyntheticLanguage
from nlpx.eval.ner_reader import spans_to_tags

TYPES = ("ALPHA", "BETA")


def sentences(n: int, seed: int) -> list[tuple[list[str], list[tuple[str, int, int]]]]:
    language = SyntheticLanguage(2)
    names = {w: TYPES[t] for t in range(2) for w in language.topics[t].nouns[:2]}
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = language.sentence(rng, rng.randrange(2)).split()
        spans = []
        for i, w in enumerate(words):
            if w in names:
                first = i - 1 if i and words[i - 1] == "the" else i
                spans.append((names[w], first, i))
        out.append((words, spans))
    return out


def iob1(tags: list[str]) -> list[str]:
    """IOB2 -> IOB1 (B- only after an entity of the same type), the layout of CoNLL-2003's files."""
    return [("I-" + t[2:]) if t.startswith("B-") and (i == 0 or tags[i - 1][2:] != t[2:]) else t
            for i, t in enumerate(tags)]


def write_conll(path: Path, n: int, seed: int) -> Path:
    lines = ["-DOCSTART- -X- O O", ""]
    for words, spans in sentences(n, seed):
        tags = iob1(spans_to_tags(len(words), spans))
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_span_json(path: Path, n: int, seed: int, *, labelled: bool = True) -> Path:
    """The same sentences with words joined by spaces, character offsets (CLUENER's layout)."""
    rows = []
    for k, (words, spans) in enumerate(sentences(n, seed)):
        starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
        text = " ".join(words)
        label: dict = {}
        for kind, i, j in spans:
            a, b = starts[i], starts[j] + len(words[j]) - 1
            label.setdefault(kind, {}).setdefault(text[a:b + 1], []).append([a, b])
        rows.append({"id": k, "text": text, **({"label": label} if labelled else {})})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def write_ner(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_conll(folder / "train.txt", 400, 1)
    write_conll(folder / "dev.txt", 150, 2)
    write_conll(folder / "test.txt", 60, 3)
    write_span_json(folder / "train.json", 200, 1)
    write_span_json(folder / "dev.json", 40, 2)
    write_span_json(folder / "test.json", 30, 3, labelled=False)
    return folder
