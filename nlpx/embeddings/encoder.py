"""A checkpoint as a sentence encoder: loading (AutoModel + AutoTokenizer from a local folder),
the max length sentence-transformers would use, length-bucketed no-grad encoding with
model.pooling, and scoring pairs by cosine against gold scores (Spearman/Pearson, scipy's).
Shared by `nlpx eval sts` and the validation of the contrastive objectives."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from nlpx.embeddings.pairs import Pair
from nlpx.errors import UserError

log = logging.getLogger("nlpx")

# -- the model ----------------------------------------------------------------------------------

@dataclass
class Encoder:
    model: object
    tokenizer: object
    path: Path
    device: str
    pooler_trained: bool  # False: the checkpoint has no pooler weights (an MLM-only export)
    lm: object = None  # head="masked_lm": the whole AutoModelForMaskedLM (`model` is its encoder)


def load_encoder(path: str | Path, device: str = "cpu", head: str | None = None) -> Encoder:
    """AutoModel (head="masked_lm": AutoModelForMaskedLM, whose encoder is `model`) + AutoTokenizer
    from a local folder, in eval mode on `device`."""
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from nlpx.models.attention_scale import restore  # (importing nlpx.models registers GAU's classes)

    path = Path(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"model.pretrained={path}: cannot load a tokenizer there ({str(e).splitlines()[0]})") from None
    if tokenizer.pad_token is None:  # GPT-2: padding is masked out, any id does
        if tokenizer.eos_token is None:
            raise UserError(f"model.pretrained={path}: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    try:
        auto = AutoModelForMaskedLM if head == "masked_lm" else AutoModel
        model, loading = auto.from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as e:
        raise UserError(f"model.pretrained={path}: cannot load a model there ({str(e).splitlines()[0]})") from None
    lm, model = (model, model.base_model) if head == "masked_lm" else (None, model)
    restore(lm or model)  # nlpx's own attention scale, where the checkpoint was trained with it
    missing = list(loading.get("missing_keys", []))
    pooler_missing = [k for k in missing if "pooler" in k]
    others = [k for k in missing if "pooler" not in k]
    if others:
        log.warning("model.pretrained=%s: %d weights are not in the checkpoint and were initialised at random "
                    "(%s, ...)", path, len(others), others[0])
    has_pooler = getattr(model, "pooler", None) is not None
    (lm or model).eval().to(device)  # `model` is inside `lm` when there is one
    return Encoder(model, tokenizer, path, device, pooler_trained=has_pooler and not pooler_missing, lm=lm)


def effective_pooling(encoder: Encoder, pooling: str) -> str:
    """`cls` on a checkpoint without trained pooler weights would read a random layer: its first
    token's hidden state is used instead (what `cls` means for a model with no pooler at all)."""
    if encoder.model.config.model_type == "xlnet" and pooling in ("cls", "cls_before_pooler"):
        raise UserError(f"model.pooling={pooling}: XLNet's summary token [CLS] is its last, not its first "
                        "(use model.pooling=mean or max)")
    return "cls_before_pooler" if pooling == "cls" and not encoder.pooler_trained else pooling


def position_limit(config) -> int | None:
    """The longest input the model's position table takes (RoBERTa's first pad_id + 1 rows are not
    positions); None where there is no limit in the config."""
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not n or n < 0:
        return None
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        n -= (config.pad_token_id or 0) + 1
    return int(n)


def resolve_max_length(value, encoder: Encoder) -> tuple[int, str]:
    """(max_length, where it came from), as sentence-transformers chooses it when value is null:
    the checkpoint's sentence_bert_config.json max_seq_length, else the tokenizer's model_max_length
    capped at the model's position limit."""
    limit = position_limit(encoder.model.config)
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise UserError(f"eval.max_length={value}: give a number of tokens (2 or more), or null")
        if limit is not None and value > limit:
            raise UserError(f"eval.max_length={value}: the model takes at most {limit} tokens")
        return int(value), "eval.max_length"
    st_config = encoder.path / "sentence_bert_config.json"
    if st_config.is_file():
        try:
            st_max = json.loads(st_config.read_text()).get("max_seq_length")
        except (ValueError, AttributeError):
            st_max = None
        if isinstance(st_max, int) and st_max > 1:
            return min(st_max, limit or st_max), "sentence_bert_config.json"
    candidates = [n for n in (encoder.tokenizer.model_max_length, limit) if n and n < 1_000_000]
    if not candidates:
        return 512, "default (no limit in the checkpoint)"
    return int(min(candidates)), "tokenizer/model position limit"


def sentence_transformers_pooling(path: Path) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with (its 1_Pooling config)."""
    modules = path / "modules.json"
    if not modules.is_file():
        return None
    try:
        for m in json.loads(modules.read_text()):
            if str(m.get("type", "")).endswith("Pooling"):
                cfg = json.loads((path / m.get("path", "") / "config.json").read_text())
                if cfg.get("pooling_mode"):
                    mode = cfg["pooling_mode"]
                    return mode if isinstance(mode, str) else ",".join(mode)
                names = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                         "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                         "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
                return ",".join(v for k, v in names.items() if cfg.get(k)) or None
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return None


# -- encoding and scoring -----------------------------------------------------------------------

def encode(encoder: Encoder, sentences: list[str], *, pooling: str, batch_size: int, max_length: int):
    """[len(sentences), hidden] float32 CPU tensor, in the order of `sentences`.

    Batches hold sentences of similar token length (sorted, longest first), each padded to its
    own longest member; no gradient."""
    import numpy as np
    import torch

    from nlpx.data.buckets import bucketed_batches
    from nlpx.embeddings.pooling import pool

    tok = encoder.tokenizer
    encoded = tok(list(sentences), truncation=True, max_length=max_length, return_attention_mask=False)
    ids = encoded["input_ids"]
    # single sentences are one segment (all zeros, every family's default), except in XLNet's
    # layout, where [CLS] is a segment of its own: then the tokenizer's segment ids are passed
    types = encoded.get("token_type_ids")
    if types is not None and not any(any(t) for t in types):
        types = None
    lengths = np.array([len(x) for x in ids])
    pad = tok.pad_token_id
    out = None
    with torch.inference_mode():
        for batch in bucketed_batches(lengths, batch_size, seed=0, epoch=0, shuffle=False):
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            segments = None if types is None else torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :lengths[i]] = torch.tensor(ids[i])
                mask[row, :lengths[i]] = 1
                if segments is not None:
                    segments[row, :lengths[i]] = torch.tensor(types[i])
            extra = {} if segments is None else {"token_type_ids": segments.to(encoder.device)}
            outputs = encoder.model(input_ids=input_ids.to(encoder.device), attention_mask=mask.to(encoder.device),
                                    **extra)
            vectors = pool(outputs, mask, pooling).float().cpu()
            if out is None:
                out = torch.empty((len(sentences), vectors.shape[-1]), dtype=torch.float32)
            out[torch.as_tensor(batch)] = vectors
    return out


def cosine_scores(a, b):
    """cos(a_i, b_i) for each row, as numpy float32 (sentence-transformers' pairwise_cos_sim)."""
    import torch.nn.functional as F

    return (F.normalize(a.float(), p=2, dim=1) * F.normalize(b.float(), p=2, dim=1)).sum(dim=1).numpy()


def correlations(gold, predicted) -> dict[str, float]:
    """Spearman's and Pearson's correlation (scipy, 0-1 scale); nan where one side is constant."""
    import warnings

    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    gold, predicted = np.asarray(gold, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: the nan says it
        return {"spearman": float(spearmanr(gold, predicted)[0]), "pearson": float(pearsonr(gold, predicted)[0])}


def evaluate_pairs(encoder: Encoder, pairs: list[Pair], *, pooling: str, batch_size: int,
                   max_length: int) -> dict:
    """Encode the pairs' distinct sentences, score each pair by cosine, correlate with the gold
    scores. Spearman and Pearson x100; examples/s = pairs per second of encoding + scoring."""
    texts = list(dict.fromkeys(s for p in pairs for s in (p.sentence1, p.sentence2)))
    index = {s: i for i, s in enumerate(texts)}
    started = time.perf_counter()
    vectors = encode(encoder, texts, pooling=pooling, batch_size=batch_size, max_length=max_length)
    predicted = cosine_scores(vectors[[index[p.sentence1] for p in pairs]], vectors[[index[p.sentence2] for p in pairs]])
    seconds = time.perf_counter() - started
    corr = correlations([p.score for p in pairs], predicted)
    return {"pairs": len(pairs), "sentences_encoded": len(texts), "spearman": 100 * corr["spearman"],
            "pearson": 100 * corr["pearson"], "seconds": round(seconds, 4),
            "examples_per_s": len(pairs) / seconds, "sentences_per_s": len(texts) / seconds,
            "predictions": [float(x) for x in predicted]}


