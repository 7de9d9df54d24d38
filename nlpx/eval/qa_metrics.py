"""Extractive QA scores by the two official evaluation scripts' rules: exact match and F1 of each
prediction against every gold answer, the best of them kept, averaged over questions.

- squad_scores: SQuAD v1.1 (evaluate-v1.1.py). Text is normalised (lower case, ASCII punctuation
  removed, the articles a / an / the removed, whitespace collapsed); EM is equality of the
  normalised texts, F1 the token-level F1 of the whitespace tokens (bag overlap).
- cmrc2018_scores: CMRC 2018 (cmrc2018_evaluate.py). EM compares the texts lower-cased with its
  punctuation list removed; F1 comes from the longest common substring of the mixed segmentation,
  Chinese characters one by one and other runs whole words, with that punctuation dropped. The
  official script splits the non-Chinese runs with nltk's word_tokenize; this uses a regular
  expression instead (no nltk data to download): words, numbers with inner "," or "." (1,000,
  3.14, u.s.a) whole, other punctuation a token of its own, which agrees with nltk on these; it
  differs on contractions (nltk: "do" "n't").
Written here because neither script is a package (both are files in the tasks' repositories).
"""

from __future__ import annotations

import re
import string
from collections import Counter

# cmrc2018_evaluate.py's sp_char
CMRC_PUNCTUATION = frozenset(["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！",
                              "“", "”", "；", "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～",
                              "『", "』"])
_CHINESE = re.compile(r"[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\w+(?:[.,]\w+)*|[^\w\s]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_f1(prediction: str, gold: str) -> float:
    pred, truth = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = sum((Counter(pred) & Counter(truth)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(truth)
    return 2 * p * r / (p + r)


def squad_em(prediction: str, gold: str) -> float:
    return float(squad_normalize(prediction) == squad_normalize(gold))


def mixed_segmentation(text: str) -> list[str]:
    """CMRC 2018's segmentation with its punctuation removed: Chinese characters one by one, the
    text between them as words."""
    out, run = [], ""
    for char in str(text).lower().strip():
        if char in CMRC_PUNCTUATION:
            continue
        if _CHINESE.match(char):
            out.extend(_WORDS.findall(run))
            run = ""
            out.append(char)
        else:
            run += char
    out.extend(_WORDS.findall(run))
    return out


def longest_common_substring(a: list[str], b: list[str]) -> int:
    best, row = 0, [0] * (len(b) + 1)
    for x in a:
        prev, row = row, [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                row[j + 1] = prev[j] + 1
                best = max(best, row[j + 1])
    return best


def cmrc_f1(prediction: str, gold: str) -> float:
    gold_segs, pred_segs = mixed_segmentation(gold), mixed_segmentation(prediction)
    lcs = longest_common_substring(gold_segs, pred_segs)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred_segs), lcs / len(gold_segs)
    return 2 * p * r / (p + r)


def cmrc_em(prediction: str, gold: str) -> float:
    def strip(s: str) -> str:
        return "".join(c for c in str(s).lower().strip() if c not in CMRC_PUNCTUATION)

    return float(strip(prediction) == strip(gold))


def _scores(em, f1, predictions: list[str], answers: list[list[str]]) -> dict[str, float]:
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} questions")
    n = max(len(predictions), 1)
    return {"exact_match": sum(max(em(p, g) for g in golds) for p, golds in zip(predictions, answers)) / n,
            "f1": sum(max(f1(p, g) for g in golds) for p, golds in zip(predictions, answers)) / n}


def squad_scores(predictions: list[str], answers: list[list[str]]) -> dict[str, float]:
    """{"exact_match", "f1"} as fractions (the official script prints them x100)."""
    return _scores(squad_em, squad_f1, predictions, answers)


def cmrc2018_scores(predictions: list[str], answers: list[list[str]]) -> dict[str, float]:
    return _scores(cmrc_em, cmrc_f1, predictions, answers)
