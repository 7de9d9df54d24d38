"""What an ablation's seeds can and cannot tell: the paired t-test of an arm against the baseline,
Holm's correction across the arms, and the minimum detectable effect.

The arms of a grid share seeds (and with them initialisation and data order), so a seed is the
unit: the test is on the per-seed differences arm − baseline (scipy's `ttest_rel`), and the
minimum detectable effect (MDE) is the |Δ| that a two-sided paired t-test at α = 0.05 would
find with power 0.8, given the observed standard deviation of those differences and n — solved
exactly through the noncentral t distribution (statsmodels' `TTestPower`; about 3.3 standard
deviations at n = 3). A Δ below the MDE is no finding either way.
"""

from __future__ import annotations

import math
import statistics

ALPHA = 0.05
POWER = 0.8


def paired(arm: dict[int, float], base: dict[int, float]) -> dict:
    """Arm − baseline over the seeds both have: delta (mean difference), sd of the differences,
    n, the paired t-test's two-sided p and the MDE (nan where n < 2 or the differences do not vary)."""
    seeds = sorted(set(arm) & set(base))
    diffs = [arm[s] - base[s] for s in seeds]
    n = len(diffs)
    out = {"delta": statistics.fmean(diffs) if diffs else math.nan, "sd_diff": math.nan, "n_pairs": n,
           "p": math.nan, "mde": math.nan}
    if n < 2:
        return out
    out["sd_diff"] = statistics.stdev(diffs)
    out["mde"] = mde(out["sd_diff"], n)
    if out["sd_diff"] > 0:
        from scipy.stats import ttest_rel

        out["p"] = float(ttest_rel([arm[s] for s in seeds], [base[s] for s in seeds]).pvalue)
    return out


def mde(sd_diff: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean difference a two-sided paired t-test over n pairs detects with `power`."""
    if n < 2 or not math.isfinite(sd_diff):
        return math.nan
    return effect_size(n, alpha, power) * sd_diff


def effect_size(n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Detectable standardised effect (Δ / sd of the differences) at n pairs."""
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                          alternative="two-sided"))


def seeds_needed(delta: float, sd_diff: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Pairs (seeds) a two-sided paired t-test needs to detect `delta` at this sd (rounded up);
    nan where the sd is 0 or unknown or delta is 0."""
    if not (math.isfinite(delta) and math.isfinite(sd_diff)) or delta == 0 or sd_diff <= 0:
        return math.nan
    from statsmodels.stats.power import TTestPower

    n = TTestPower().solve_power(effect_size=abs(delta) / sd_diff, nobs=None, alpha=alpha, power=power,
                                 alternative="two-sided")
    return float(math.ceil(max(2.0, float(n))))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels' multipletests); nan stays nan and is not counted."""
    finite = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    out = [math.nan] * len(pvalues)
    if finite:
        from statsmodels.stats.multitest import multipletests

        adjusted = multipletests([pvalues[i] for i in finite], alpha=ALPHA, method="holm")[1]
        for i, p in zip(finite, adjusted):
            out[i] = float(p)
    return out


def detectable(delta: float, mde_value: float) -> bool:
    return math.isfinite(delta) and math.isfinite(mde_value) and abs(delta) >= mde_value
