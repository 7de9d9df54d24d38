"""`nlpx train`: the objective's config names the recipe that trains it (objective.recipe:
pretraining, fine-tuning or embedding training)."""

from __future__ import annotations


def train(cfg, overrides: list[str]) -> dict:
    from hydra.utils import get_method

    return get_method(str(cfg.objective.recipe))(cfg, overrides)
