"""Zero-shot scoring with a pretrained model's own heads: the NSP head (NSP-BERT) or the MLM head
(PET). What is scored is nlpx.eval.prompts'; here are the models and the batched forward passes.

Each example gets one score per candidate; the prediction is the best-scoring candidate (CLUEWSC:
per question, nlpx.eval.prompts.wsc_predictions). Nothing is trained and nothing is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nlpx.errors import UserError
from nlpx.eval import prompts as P


@dataclass
class Scored:
    scores: list[list[float]]  # per example, per candidate
    predictions: list[int]  # class ids (classification, CLUEWSC) or the chosen candidate's position (ChID)


def load_head(path: Path, mode: str):
    """(model, tokenizer): the checkpoint with its NSP head (mode nsp) or MLM head (mode mlm). A
    checkpoint without that head's weights is refused: a fresh random head would score noise."""
    from transformers import AutoModelForMaskedLM, AutoModelForPreTraining

    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.models.attention_scale import restore

    auto, head, what = ((AutoModelForPreTraining, "seq_relationship", "an NSP head (pretrained with objective=mlm_nsp, "
                         "or an HF BertForPreTraining / BertForNextSentencePrediction folder)")
                        if mode == "nsp" else
                        (AutoModelForMaskedLM, None, "an MLM head (pretrained with a masked-LM objective)"))
    try:
        model, info = auto.from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    except ValueError:
        raise UserError(f"model.pretrained={path}: zeroshot_{mode} needs {what}; this model type has none") from None
    missing = [k for k in info["missing_keys"] if (head in k if head else ("predictions" in k or "lm_head" in k))
               and not k.endswith("decoder.bias")]  # (the decoder bias is tied to the head's own bias)
    no_nsp = mode == "nsp" and getattr(getattr(model, "cls", None), "seq_relationship", None) is None  # ALBERT: SOP
    if no_nsp or missing:
        raise UserError(f"model.pretrained={path}: zeroshot_{mode} needs {what}; the checkpoint lacks "
                        f"{', '.join(missing[:3]) or 'it'}")
    restore(model)
    model = NSPOnly(model) if mode == "nsp" else model
    return model.eval(), load_tokenizer(path, key="model.pretrained")


class NSPOnly(torch.nn.Module):
    """A *ForPreTraining model's NSP logits without its MLM logits. Its own forward computes both,
    and the MLM head's vocabulary x positions logits are most of the cost (with a 21k-token Chinese
    vocabulary, over 90% of a tiny model's forward): NSP scoring needs only the pooled vector's head."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        from types import SimpleNamespace

        pooled = self.model.base_model(**inputs).pooler_output
        return SimpleNamespace(seq_relationship_logits=self.model.cls.seq_relationship(pooled))


@torch.no_grad()
def nsp_scores(model, tokenizer, pairs: list[tuple[str, str]], *, max_length: int, batch_size: int,
               keep_second: bool) -> np.ndarray:
    """P(B follows A) per (A, B): the softmax of the NSP logits at class 0 (BERT's "is next").
    keep_second: cut only A when too long (B is a template); else the longer of the two."""
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        enc = tokenizer([a for a, _ in chunk], [b for _, b in chunk], truncation="only_first" if keep_second
                        else "longest_first", max_length=max_length, padding=True, return_tensors="pt")
        logits = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                       ).seq_relationship_logits
        out.append(torch.softmax(logits.float(), -1)[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros(0)


@torch.no_grad()
def mlm_scores(model, tokenizer, inputs: list[P.Masked], *, batch_size: int) -> list[np.ndarray]:
    """Per input, the mean log-probability of each of its candidates' tokens at the [MASK]s."""
    out = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        width = max(len(m.ids) for m in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, m in enumerate(chunk):
            ids[i, :len(m.ids)] = torch.tensor(m.ids)
            mask[i, :len(m.ids)] = 1
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        for i, m in enumerate(chunk):
            at = logp[i, m.masks]  # (mask positions, vocabulary)
            targets = torch.tensor(m.targets)  # (candidates, mask positions)
            out.append(at.gather(1, targets.T).mean(0).numpy())
    return out


def score(spec, examples, model, tokenizer, mode: str, *, max_length: int, batch_size: int) -> Scored:
    prompts = P.prompts_of(spec, f"eval.mode=zeroshot_{mode}")
    kind = P.kind_of(spec)
    counts = [len(P.candidates(spec, prompts, e)) for e in examples]
    if mode == "nsp":
        pairs = [p for e in examples for p in P.nsp_pairs(spec, prompts, e)]
        flat = nsp_scores(model, tokenizer, pairs, max_length=max_length, batch_size=batch_size,
                          keep_second=kind in ("single", "wsc"))
        per_example, at = [], 0
        for n in counts:
            per_example.append([float(x) for x in flat[at:at + n]])
            at += n
    else:
        inputs = [P.mlm_inputs(spec, prompts, e, tokenizer, max_length) for e in examples]
        flat = mlm_scores(model, tokenizer, [m for ms in inputs for m in ms], batch_size=batch_size)
        per_example, at = [], 0
        for ms, n in zip(inputs, counts):
            row = [0.0] * n
            for m in ms:
                for member, value in zip(m.candidates, flat[at]):
                    row[member] = float(value)
                at += 1
            per_example.append(row)
    if kind == "wsc":
        predictions = P.wsc_predictions(examples, [s[0] for s in per_example], spec.labels)
    else:
        predictions = [int(np.argmax(s)) for s in per_example]  # the first of equal scores
    return Scored(per_example, predictions)
