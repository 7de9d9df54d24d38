"""The hf/ export (save_pretrained, safetensors) and the provenance recorded in summary.json."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from nlpx.rundir import file_mode


def export_hf(model, tokenizer, target: Path, extra=None, state_dict=None) -> None:
    """Write to a sibling folder, then swap it in: a crash never leaves a half-written hf/, and a
    failed write (a full disk) leaves no sibling behind. `extra(folder)` adds files of nlpx's own
    (an objective's heads) inside the same swap; `state_dict` replaces the model's own (RTD's
    GDES tables written as plain weights)."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(str(tmp))
        if extra is not None:
            extra(tmp)
        for f in tmp.rglob("*"):  # safetensors writes its file 0600; the rest of the run is 0644
            if f.is_file():
                f.chmod(file_mode())
        swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_in(new: Path, target: Path) -> None:
    """`new` becomes `target` with no moment where `target` is missing: an atomic exchange of the
    two names where the system has one (Linux renameat2), else rename the old one aside first."""
    if target.exists() and _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old folder
        return
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): Python's os has no call for it."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


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
