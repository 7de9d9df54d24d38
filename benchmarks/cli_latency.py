"""Start-up latency of the CLI: median wall time of `nlpx --help` and `nlpx train --help`.

`python -c "import lightning"` (what a command pays once it imports the training stack) and
`python -c pass` (the interpreter alone) are timed alongside for contrast. Every command gets one
untimed warm-up run, then the commands are timed round-robin (interleaved, so drift of this shared
machine hits them alike) and the median of the runs is reported.

    .venv/bin/python benchmarks/cli_latency.py [--runs 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _util import REPO, cpu_stall_us, median, print_table, stall_pct, venv_bin, write_result


def commands() -> dict[str, list[str]]:
    nlpx, py = venv_bin("nlpx"), sys.executable
    return {
        "nlpx --help": [nlpx, "--help"],
        "nlpx train --help": [nlpx, "train", "--help"],
        'python -c "import lightning"': [py, "-c", "import lightning"],
        "python -c pass": [py, "-c", "pass"],
    }


def run_once(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    ap.add_argument("--out", help="result JSON path (default benchmarks/results/cli_latency.json)")
    args = ap.parse_args()

    cmds = commands()
    for argv in cmds.values():  # warm-up: page cache, .pyc files
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    stall_before, t0 = cpu_stall_us(), time.perf_counter()
    for _ in range(args.runs):
        for name, argv in cmds.items():
            times[name].append(run_once(argv))

    stall = stall_pct(stall_before, cpu_stall_us(), time.perf_counter() - t0)
    rows, results = [], {}
    for name, ts in times.items():
        results[name] = {"argv": cmds[name], "median_s": round(median(ts), 4),
                         "min_s": round(min(ts), 4), "max_s": round(max(ts), 4),
                         "runs_s": [round(t, 4) for t in ts]}
        rows.append([name, f"{median(ts) * 1000:.0f}", f"{min(ts) * 1000:.0f}", f"{max(ts) * 1000:.0f}"])
    print(f"CLI latency: median of {args.runs} runs after 1 warm-up (wall time, ms)\n")
    print_table(["command", "median ms", "min ms", "max ms"], rows)
    lightning = times['python -c "import lightning"']
    for name in ("nlpx --help", "nlpx train --help"):
        print(f"\n{name}: {median(times[name]) / median(lightning):.2f}x the time of "
              f'`python -c "import lightning"`', end="")
    print()
    if stall is not None and stall > 10:
        print(f"note: other work competed for the CPU during {stall:.0f}% of the timing (Linux PSI): "
              "the times are inflated")
    path = write_result("cli_latency", {"runs": args.runs, "warmup_runs": 1, "cpu_stall_pct": stall,
                                        "results": results}, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
