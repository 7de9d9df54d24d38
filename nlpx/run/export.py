"""The hf/ export (save_pretrained, safetensors) and the provenance recorded in summary.json."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path


def export_hf(model, tokenizer, target: Path, extra=None, state_dict=None) -> None:
    """Write to a sibling folder, then swap it in: a crash never leaves a half-written hf/.
    `extra(folder)` adds files of nlpx's own (an objective's heads) inside the same swap;
    `state_dict` replaces the model's own (RTD's GDES tables written as plain weights)."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(str(tmp))
    if extra is not None:
        extra(tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def summary_info() -> dict:
    import lightning
    import numpy
    import tokenizers
    import torch
    import transformers

    import nlpx

    return {"versions": {"nlpx": nlpx.__version__, "python": platform.python_version(),
                         "torch": torch.__version__, "transformers": transformers.__version__,
                         "lightning": lightning.__version__, "tokenizers": tokenizers.__version__,
                         "numpy": numpy.__version__},
            "git_commit": git_commit()}


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
