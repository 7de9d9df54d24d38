"""Run directories (runs/<experiment>/<run_id>/) and atomic writes into them."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path

RUN_ID_ENV = "NLPX_RUN_ID"  # DDP child processes re-run the command: they must find the same run


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def run_dir_for(cfg, *, existing: bool = False) -> Path:
    """runs_dir/experiment/run_id. A run_id naming a run that exists is an error (a run is never
    overwritten) unless `existing` (a resumed evaluation continues its own directory); a DDP rank
    other than 0 joins the directory rank 0 made."""
    from nlpx.errors import UserError

    child = os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
    inherited = os.environ.get(RUN_ID_ENV) if child else None
    run_id = cfg.run_id or inherited or new_run_id()
    path = Path(cfg.runs_dir) / cfg.experiment / run_id
    if cfg.run_id and not existing and not child and path.exists():
        raise UserError(f"run_id={run_id}: {path} already exists (a run is never overwritten); continue it "
                        f"with resume={path}, or give another run_id")
    os.environ[RUN_ID_ENV] = run_id
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_mode() -> int:
    """The mode a new file gets from open() under the current umask (0644 usually)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def record_in_run(model_path: Path, key: str, entry: dict, history_entry: dict) -> None:
    """model.pretrained=<nlpx run dir>/hf: that run's summary.json gets `key` = entry and a
    `<key>_history` (one item per evaluation run directory); ablations read results there."""
    run_dir = model_path.parent if model_path.name == "hf" else None
    summary = run_dir / "summary.json" if run_dir is not None else None
    if summary is None or not summary.is_file():
        return
    data = json.loads(summary.read_text())
    data[key] = entry
    history = [h for h in data.get(f"{key}_history", []) if h.get("run_dir") != entry["run_dir"]]
    data[f"{key}_history"] = history + [history_entry]
    atomic_write_json(summary, data)


def disk_full(exc: BaseException) -> str | None:
    """'no space left on device (PATH)' when `exc` is a write that failed for lack of space
    (an OSError, or a library's error carrying its text); else None."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on device{f' writing {exc.filename}' if exc.filename else ''}"
    text = str(exc)
    if "No space left on device" in text or "StorageFull" in text:
        return "no space left on device"
    return None
