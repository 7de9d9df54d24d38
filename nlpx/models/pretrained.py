"""`model.pretrained=PATH`: a local HF checkpoint folder, or an nlpx run directory (its hf/)."""

from __future__ import annotations

from pathlib import Path

from nlpx.errors import UserError


def resolve_pretrained(path) -> Path | None:
    if path in (None, ""):
        return None
    p = Path(str(path)).expanduser()
    if (p / "hf" / "config.json").is_file():
        return p / "hf"
    if (p / "config.json").is_file():
        return p
    if not p.exists():
        raise UserError(f"model.pretrained={path}: no such folder (give a local HF checkpoint "
                        "folder or an nlpx run directory)")
    raise UserError(f"model.pretrained={path}: no config.json there or in its hf/ folder")


def check_vocab(tokenizer, model_vocab_size: int, where: str) -> None:
    """A tokenizer with ids beyond the checkpoint's embedding table would index out of range."""
    if len(tokenizer) > model_vocab_size:
        raise UserError(f"data.tokenizer: its vocabulary has {len(tokenizer)} tokens but the "
                        f"checkpoint {where} has {model_vocab_size} embeddings; use the checkpoint's "
                        "own tokenizer (leave data.tokenizer unset)")
