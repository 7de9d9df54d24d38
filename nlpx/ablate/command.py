"""`nlpx ablate`: list the shipped experiments, show a plan (--dry-run), run the cells and
write the report, or rebuild the report alone (--report)."""

from __future__ import annotations

from pathlib import Path

from nlpx.ablate import spec as specs
from nlpx.errors import UserError

LAUNCHER = ("hydra/", "hydra.")  # overrides for the Hydra launcher that runs the cells


def list_experiments() -> list[tuple[str, str]]:
    return [(name, specs.load(name).description) for name in specs.shipped()]


def prepare(name: str, size: str, overrides: list[str]):
    """(spec, cells, root): every cell composed and keyed, nothing written."""
    spec = specs.load(name)
    root, extra = _root(spec, overrides)
    return spec, specs.plan(spec, size, extra, root), root, extra


def _root(spec, overrides: list[str]) -> tuple[Path, list[str]]:
    """runs_dir/ablate/<name> and the cell overrides: runs_dir= (where the ablation goes) and the
    Hydra launcher's overrides (hydra/launcher=..., hydra.launcher.*) are not cell settings."""
    runs_dir = "runs"
    extra = []
    for o in overrides:
        if o.startswith("runs_dir="):
            runs_dir = o.split("=", 1)[1]
        elif not o.startswith(LAUNCHER):
            extra.append(o)
    return Path(runs_dir) / "ablate" / spec.name, extra


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


def run(name: str, size: str, overrides: list[str]) -> tuple[list[dict], dict]:
    """Run the cells, then write the report: (cell records, report)."""
    from nlpx.ablate.report import build
    from nlpx.ablate.runner import run as run_cells

    launcher = [o for o in overrides if o.startswith(LAUNCHER)]
    spec, cells, root, extra = prepare(name, size, overrides)
    check_machine(spec, cells)
    records = run_cells(spec, size, extra, cells, root, launcher)
    return records, build(root)


def check_machine(spec, cells) -> None:
    """What every cell needs of this machine (a GPU), before the first one runs; the plan itself
    (a dry run, a report) composes on any machine."""
    from omegaconf import OmegaConf

    from nlpx.validate import check_hardware

    for cell in cells:
        for stage, config in specs.resolved(cell, spec).items():
            try:
                check_hardware(OmegaConf.create(config))
            except UserError as e:
                raise UserError(f"{cell.name} {stage}: {e}") from None


def report(name: str, overrides: list[str]) -> dict:
    from nlpx.ablate.report import build

    root, _ = _root(specs.load(name), overrides)
    return build(root)
