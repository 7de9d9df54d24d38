"""`nlpx ablate`: list the shipped experiments, show a plan (--dry-run), or run the cells."""

from __future__ import annotations

from pathlib import Path

from nlpx.ablate import spec as specs


def list_experiments() -> list[tuple[str, str]]:
    return [(name, specs.load(name).description) for name in specs.shipped()]


def prepare(name: str, size: str, overrides: list[str]):
    """(spec, cells, root): every cell composed and keyed, nothing written."""
    spec = specs.load(name)
    runs_dir = "runs"
    extra = []
    for o in overrides:  # where the ablation goes is not a cell setting
        if o.startswith("runs_dir="):
            runs_dir = o.split("=", 1)[1]
        else:
            extra.append(o)
    root = Path(runs_dir) / "ablate" / spec.name
    return spec, specs.plan(spec, size, extra, root), root, extra


def dry_run_lines(spec, cells, root: Path, size: str) -> list[str]:
    from nlpx.ablate.runner import status

    lines = [f"{spec.name} (--size {size}): {len(spec.arms)} arms x {len(spec.seeds)} seeds = {len(cells)} cells, "
             f"stages {' -> '.join(f'{s.name} ({s.command})' for s in spec.stages)}; baseline {spec.baseline}; "
             f"report in {root}"]
    for cell in cells:
        done = status(cell)
        state = f" [{done['status']}]" if done else ""
        lines.append(f"{cell.name}  key {cell.key}{state}")
        for stage in spec.stages:
            lines.append(f"  {stage.name}: nlpx {stage.command} {' '.join(cell.stages[stage.name])}")
            lines.append(f"    -> {cell.run_dirs[stage.name]}")
    return lines


def run(name: str, size: str, overrides: list[str]) -> list[dict]:
    from nlpx.ablate.runner import run as run_cells

    spec, cells, root, extra = prepare(name, size, overrides)
    return run_cells(spec, size, extra, cells, root)
