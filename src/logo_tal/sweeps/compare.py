"""Is one configuration of a sweep better than another, beyond the seed spread?

Every pair of rows of a :class:`~logo_tal.sweeps.summary.Summary` that has at least two
finished jobs each, on one metric (``mAP_avg`` or ``mAP@0.7``): the difference of the means,
the sum of the two sample standard deviations (the rule of thumb docs/results/README.md uses:
a difference larger than it "exceeds the seed spread") and Welch's unequal-variance t-test
(t, Welch-Satterthwaite degrees of freedom, two-sided p). With 3 seeds a row, p is a guide,
not a verdict: the tests run for every pair are not corrected for their number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from logo_tal.core.protocol import MAP_AVG, map_key
from logo_tal.sweeps.summary import POOLED, Summary, collect, summarize, sweep_title

COMPARISONS_MD = "comparisons.md"


@dataclass(frozen=True)
class Comparison:
    """Row ``first`` minus row ``second`` on ``metric`` (percent mAP)."""

    first: str
    second: str
    metric: str
    difference: float
    spread: float  # the two sample standard deviations added
    t: float
    df: float
    p: float  # two-sided

    @property
    def exceeds_spread(self) -> bool:
        return abs(self.difference) > self.spread


def metric_name(text: str) -> str:
    """``avg`` -> ``mAP_avg``; a threshold such as ``0.7`` -> ``mAP@0.7``."""
    if text in ("avg", MAP_AVG):
        return MAP_AVG
    try:
        return map_key(float(text.removeprefix("mAP@")))
    except ValueError:
        raise ValueError(
            f"unknown metric {text!r}: use avg or a tIoU threshold such as 0.7"
        ) from None


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300

    def guard(v: float) -> float:
        return tiny if abs(v) < tiny else v

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 500):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / guard(1.0 + even * d)
        c = guard(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / guard(1.0 + odd * d)
        c = guard(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The fraction converges fast only on one side of the mean; use the symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` (not necessarily whole) degrees of freedom."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def welch(
    first: tuple[float, float, int], second: tuple[float, float, int]
) -> tuple[float, float, float]:
    """Welch's t-test from two ``(mean, sample std, n)``: ``(t, df, two-sided p)``."""
    (m1, s1, n1), (m2, s2, n2) = first, second
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0.0:  # both rows without spread: no test is possible
        return math.nan, math.nan, math.nan
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    return t, df, t_two_sided_p(t, df)


def compare(summary: Summary, metric: str = MAP_AVG) -> list[Comparison]:
    """Every pair of rows with two or more finished jobs each, in the summary's row order."""
    rows = [r for r in summary.rows if r.stats.get(metric, (0, 0, 0))[2] >= 2]
    out = []
    for a, b in combinations(rows, 2):
        (m1, s1, _), (m2, s2, _) = a.stats[metric], b.stats[metric]
        t, df, p = welch(a.stats[metric], b.stats[metric])
        out.append(Comparison(a.label, b.label, metric, m1 - m2, s1 + s2, t, df, p))
    return out


def to_markdown(summary_title: str, comparisons: Sequence[Comparison]) -> str:
    """One table per metric: difference, spread, Welch's t, df and p for every pair."""
    lines = [
        f"# Pairwise comparisons: {summary_title}",
        "",
        "First row minus second (percent mAP). *spread*: the two sample standard deviations "
        "added; **bold**: the difference exceeds it. Welch's t-test, two-sided p, not corrected "
        "for the number of pairs.",
    ]
    for metric in dict.fromkeys(c.metric for c in comparisons):
        lines += [
            "",
            f"## {metric}",
            "",
            "| first | second | difference | spread | t | df | p |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for c in (c for c in comparisons if c.metric == metric):
            diff = f"{c.difference:+.2f}"
            lines.append(
                f"| `{c.first}` | `{c.second}` | {f'**{diff}**' if c.exceeds_spread else diff} "
                f"| {c.spread:.2f} | {c.t:.2f} | {c.df:.1f} | {c.p:.3f} |"
            )
    if not comparisons:
        lines += ["", "No pair of rows has two or more finished jobs each."]
    return "\n".join(lines) + "\n"


def write_comparisons(
    root: str | Path, pooled: Sequence[str] = POOLED, metrics: Sequence[str] = ()
) -> Path:
    """Compare every pair of rows of the summary of ``root`` into ``root/comparisons.md``.

    Args:
        root: a sweep directory (or any directory above job directories).
        pooled: override keys pooled into one row, as for the summary.
        metrics: metric names (:func:`metric_name`); empty: the average and the highest tIoU
            threshold (the strict end, where boundary quality shows).
    """
    root = Path(root)
    summary = summarize(collect(root), root, pooled)
    metrics = list(metrics)
    if not metrics:
        metrics = [MAP_AVG]
        if summary.thresholds:
            metrics.append(map_key(max(summary.thresholds)))
    comparisons = [c for metric in metrics for c in compare(summary, metric)]
    path = root / COMPARISONS_MD
    path.write_text(to_markdown(sweep_title(root), comparisons))
    return path
