"""Small SQuAD-layout files with answers a model can learn: passages of the synthetic language in
which one sentence is `<marker> <answer> .`, the marker two fixed words of the language and the
answer one of topic 0's nouns; the question is the marker itself."""

from __future__ import annotations

import json
import random
from pathlib import Path

from nlpx.data.synthetic import SyntheticLanguage


def rows(n: int, seed: int, *, sentences: int = 4) -> list[dict]:
    language = SyntheticLanguage(2)
    marker = " ".join(language.topics[1].nouns[:2])
    nouns = language.topics[0].nouns
    rng = random.Random(seed)
    paragraphs = []
    for k in range(n):
        text = [language.sentence(rng, rng.randrange(2)) for _ in range(sentences)]
        answer = rng.choice(nouns)
        text.insert(rng.randrange(len(text) + 1), f"{marker} {answer} .")
        context = " ".join(text)
        start = context.index(f"{marker} {answer} .") + len(marker) + 1
        paragraphs.append({"context": context, "qas": [{"id": f"q{seed}-{k}", "question": marker,
                                                        "answers": [{"text": answer, "answer_start": start}]}]})
    return paragraphs


def write_squad(path: Path, n: int, seed: int, *, labelled: bool = True) -> Path:
    paragraphs = rows(n, seed)
    if not labelled:
        for p in paragraphs:
            for qa in p["qas"]:
                qa.pop("answers")
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}))
    return path


def write_qa(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_squad(folder / "train.json", 300, 1)
    write_squad(folder / "dev.json", 60, 2)
    write_squad(folder / "test.json", 20, 3, labelled=False)
    return folder
