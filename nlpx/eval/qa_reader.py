"""Extractive QA data in SQuAD v1.1's JSON layout (SQuAD, CMRC 2018):
{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}

A question without answers (a test file) has answers = (). Some published offsets do not point at
their answer text (CMRC 2018 dev: 200 of its answers, trial: 5); `answer_span` then takes the
occurrence of the text nearest the given offset, and a text that is not in the passage at all
leaves the question out of training (it is still scored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nlpx.errors import UserError


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # every gold answer's text (scores take the best match)
    starts: tuple[int, ...]  # their character offsets in the context, as published


def read_squad(path: str | Path) -> list[QAExample]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a SQuAD-layout JSON file ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UserError(f"{path}: no 'data' list (SQuAD layout: {{\"data\": [{{\"paragraphs\": [...]}}]}})")
    out = []
    for a, article in enumerate(doc["data"]):
        for p, para in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = para.get("context")
            if not isinstance(context, str) or not isinstance(para.get("qas"), list):
                raise UserError(f"{where}: needs a 'context' string and a 'qas' list")
            for q, qa in enumerate(para["qas"]):
                if not isinstance(qa.get("question"), str) or "id" not in qa:
                    raise UserError(f"{where}.qas[{q}]: needs 'id' and a 'question' string")
                answers = qa.get("answers") or []
                try:
                    texts = tuple(str(x["text"]) for x in answers)
                    starts = tuple(int(x.get("answer_start", -1)) for x in answers)
                except (KeyError, TypeError, ValueError, AttributeError):
                    raise UserError(f"{where}.qas[{q}] ({qa['id']}): each answer needs 'text' and "
                                    "'answer_start'") from None
                out.append(QAExample(str(qa["id"]), qa["question"], context, texts, starts))
    if not out:
        raise UserError(f"{path}: no questions")
    return out


def answer_span(example: QAExample) -> tuple[int, int] | None:
    """(first, end) character offsets (end exclusive) of the first answer found in the passage."""
    for text, start in zip(example.answers, example.starts):
        if not text:
            continue
        if example.context[start:start + len(text)] == text:
            return start, start + len(text)
        found, at = [], example.context.find(text)
        while at >= 0:
            found.append(at)
            at = example.context.find(text, at + 1)
        if found:
            best = min(found, key=lambda x: abs(x - start))
            return best, best + len(text)
    return None
