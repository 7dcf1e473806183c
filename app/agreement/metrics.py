"""Inter-annotator agreement, pure and vectorised: Krippendorff's alpha, Fleiss' and Cohen's kappa, Gwet's
AC1, percent agreement, each with a bootstrap confidence interval over items.

Items are held as `Units`: per item, how many annotators gave each value (the coincidence-matrix view),
with identical items collapsed into one row and a weight. Every measure is a ratio of sums of per-item
statistics, so a bootstrap resample over items is a multinomial draw of pattern weights followed by one
matrix product: no Python loop over items or resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Weights = Literal["linear", "quadratic"] | None
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Combine = Callable[[Floats], Floats]  # summed statistics (..., d) -> measure (...)

N_BOOT = 1000
_DRAW_CELLS = 4_000_000  # resamples x patterns drawn at once: bounds the memory of one chunk


@dataclass(frozen=True)
class Units:
    """Items as value counts: `counts[p, v]` annotators gave `values[v]`, in `weights[p]` identical items."""

    values: Floats  # (V,) ascending
    counts: Ints  # (P, V)
    weights: Ints  # (P,)

    @property
    def pairable(self) -> int:
        """Items with at least two values: the ones any agreement measure can use."""
        return int(self.weights[self.counts.sum(axis=1) >= 2].sum())


@dataclass(frozen=True)
class Measure:
    """A measure as additive per-item statistics (P, d) and the function of their sums."""

    stats: Callable[[Units], Floats]
    combine: Combine


@dataclass(frozen=True)
class Estimate:
    value: float | None  # None: undefined (e.g. fewer than two values, or a single value used throughout)
    low: float | None  # bootstrap percentile interval over items
    high: float | None
    n_items: int


def collapse(counts: ArrayLike, values: ArrayLike, weights: ArrayLike | None = None) -> Units:
    """Units from a (items, values) count matrix; items without any value are dropped."""
    table = np.asarray(counts, dtype=np.int64).reshape(-1, np.asarray(values).size)
    weight = np.ones(len(table), np.int64) if weights is None else np.asarray(weights, np.int64)
    keep = (table.sum(axis=1) > 0) & (weight > 0)
    table, weight = table[keep], weight[keep]
    base = int(table.max(initial=0)) + 1
    if table.shape[1] * np.log2(base) < 62:  # rows encode into one int64: a 1-D unique is much faster
        keys = table @ (base ** np.arange(table.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        patterns = table[first]
    else:
        patterns, inverse = np.unique(table, axis=0, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=weight, minlength=len(patterns)).astype(np.int64)
    return Units(np.asarray(values, np.float64), patterns.astype(np.int64), merged)


def units_from_matrix(matrix: ArrayLike, values: ArrayLike | None = None) -> Units:
    """Units from an (items, annotators) matrix of values with NaN for missing ones."""
    data = np.asarray(matrix, dtype=np.float64)
    present = ~np.isnan(data)
    domain = np.unique(data[present]) if values is None else np.asarray(values, np.float64)
    index = np.searchsorted(domain, data[present])
    if np.any(index >= domain.size) or np.any(domain[np.minimum(index, domain.size - 1)] != data[present]):
        raise ValueError("the matrix holds values outside `values`")
    rows = np.nonzero(present)[0]
    counts = np.zeros((data.shape[0], domain.size), np.int64)
    np.add.at(counts, (rows, index), 1)
    return collapse(counts, domain)


def _units(data: Units | ArrayLike) -> Units:
    return data if isinstance(data, Units) else units_from_matrix(data)


# --- Krippendorff's alpha --------------------------------------------------------------------------


def _delta(level: Level, values: Floats, marginals: Floats) -> Floats:
    """Squared distances between values (V, V), or (..., V, V) for ordinal, which depends on marginals."""
    diff = values[:, None] - values[None, :]
    if level == "nominal":
        return np.asarray(diff != 0, np.float64)
    if level == "interval":
        return np.asarray(diff**2, np.float64)
    if level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (diff / np.where(total == 0, 1, total)) ** 2
            return np.asarray(np.where(total == 0, 0.0, ratio), np.float64)
    # ordinal: (sum of the marginals from c to k, less half of each end)^2
    cum = np.cumsum(marginals, axis=-1)
    between = cum[..., None, :] - cum[..., :, None] + (marginals[..., :, None] - marginals[..., None, :]) / 2
    return np.asarray(between**2, np.float64)


def alpha_measure(level: Level, values: Floats) -> Measure:
    """Krippendorff's alpha from the coincidence matrix o[c, k] = sum over items of
    n_c * (n_k - [c == k]) / (m - 1), over items with m >= 2 values: alpha = 1 - (n - 1) * sum(o * delta)
    / sum(n_c * n_k * delta), n_c the coincidence marginals and n their sum."""
    size = values.size

    def stats(units: Units) -> Floats:
        counts = units.counts.astype(np.float64)
        m = counts.sum(axis=1)
        scale = np.where(m >= 2, 1 / np.maximum(m - 1, 1), 0.0)
        pairs = counts[:, :, None] * counts[:, None, :] - np.eye(size)[None] * counts[:, :, None]
        return np.asarray((pairs * scale[:, None, None]).reshape(len(counts), size * size), np.float64)

    def combine(totals: Floats) -> Floats:
        o = totals.reshape(*totals.shape[:-1], size, size)
        marginals = o.sum(axis=-1)
        n = marginals.sum(axis=-1)
        delta = _delta(level, values, marginals)
        observed = (o * delta).sum(axis=(-2, -1))
        expected = (marginals[..., :, None] * marginals[..., None, :] * delta).sum(axis=(-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):  # expected 0: a single value, undefined
            return np.asarray(np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan), np.float64)

    return Measure(stats, combine)


def krippendorff_alpha(data: Units | ArrayLike, level: Level = "nominal") -> float:
    """Alpha for any number of annotators with missing values; `data` is Units or (items, annotators)."""
    units = _units(data)
    return _point(alpha_measure(level, units.values), units)


# --- kappa-like measures on categories ----------------------------------------------------------------


def fleiss_measure() -> Measure:
    """Fleiss' kappa over items with m >= 2 ratings (m may vary): P_i = sum_j n_ij (n_ij - 1) / (m (m - 1)),
    p_j = sum_i n_ij / sum_i m_i, kappa = (mean P_i - sum p_j^2) / (1 - sum p_j^2)."""

    def stats(units: Units) -> Floats:
        counts = units.counts.astype(np.float64)
        m = counts.sum(axis=1)
        used = (m >= 2).astype(np.float64)
        agree = (counts * (counts - 1)).sum(axis=1) / np.maximum(m * (m - 1), 1)
        return np.column_stack([agree * used, used, counts * used[:, None]])

    def combine(totals: Floats) -> Floats:
        with np.errstate(divide="ignore", invalid="ignore"):  # no items: NaN, reported as undefined
            shares = totals[..., 2:] / totals[..., 2:].sum(axis=-1, keepdims=True)
            chance = (shares**2).sum(axis=-1)
            observed = totals[..., 0] / totals[..., 1]
            return np.asarray(np.where(chance < 1, (observed - chance) / (1 - chance), np.nan), np.float64)

    return Measure(stats, combine)


def fleiss_kappa(data: Units | ArrayLike) -> float:
    return _point(fleiss_measure(), _units(data))


def gwet_measure(n_categories: int) -> Measure:
    """Gwet's AC1 (Gwet 2008, missing ratings allowed): p_a over items with m >= 2 as for Fleiss,
    pi_k = mean over items with m >= 1 of n_k / m, p_e = sum pi_k (1 - pi_k) / (Q - 1), Q categories."""

    def stats(units: Units) -> Floats:
        counts = units.counts.astype(np.float64)
        m = counts.sum(axis=1)
        used = (m >= 2).astype(np.float64)
        agree = (counts * (counts - 1)).sum(axis=1) / np.maximum(m * (m - 1), 1)
        return np.column_stack([agree * used, used, counts / m[:, None], np.ones(len(m))])

    def combine(totals: Floats) -> Floats:
        with np.errstate(divide="ignore", invalid="ignore"):
            pi = totals[..., 2:-1] / totals[..., -1:]
            chance = (pi * (1 - pi)).sum(axis=-1) / max(n_categories - 1, 1)
            observed = totals[..., 0] / totals[..., 1]
            value = (observed - chance) / (1 - chance)
        return np.asarray(np.where(n_categories > 1, value, np.nan), np.float64)

    return Measure(stats, combine)


def gwet_ac1(data: Units | ArrayLike, n_categories: int | None = None) -> float:
    """AC1; `n_categories` is the size of the scale (default: the values that occur)."""
    units = _units(data)
    return _point(gwet_measure(n_categories or units.values.size), units)


def percent_measure(ignore: Sequence[float] = ()) -> Measure:
    """Share of agreeing pairs of values within an item, averaged over items with m >= 2 values left once
    the `ignore`d values (e.g. ties) are set aside."""

    def stats(units: Units) -> Floats:
        kept = units.counts[:, ~np.isin(units.values, np.asarray(ignore, np.float64))].astype(np.float64)
        m = kept.sum(axis=1)
        used = (m >= 2).astype(np.float64)
        agree = (kept * (kept - 1)).sum(axis=1) / np.maximum(m * (m - 1), 1)
        return np.column_stack([agree * used, used])

    def combine(totals: Floats) -> Floats:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = totals[..., 0] / totals[..., 1]
            return np.asarray(np.where(totals[..., 1] > 0, share, np.nan), np.float64)

    return Measure(stats, combine)


def percent_agreement(data: Units | ArrayLike, ignore: Sequence[float] = ()) -> float:
    return _point(percent_measure(ignore), _units(data))


# --- bootstrap -----------------------------------------------------------------------------------------


def weighted_sum(weights: NDArray[np.int64], stats: Floats) -> Floats:
    """weights (..., P) @ stats (P, d), without BLAS: its threads cost far more than these small products."""
    return np.asarray(np.einsum("...p,pd->...d", weights.astype(np.float64), stats), np.float64)


def _point(measure: Measure, units: Units) -> float:
    totals = weighted_sum(units.weights, measure.stats(units))
    return float(measure.combine(totals))


def resample(stats: Floats, weights: Ints, combines: Sequence[Combine], *, n_boot: int, seed: int,
             confidence: float) -> list[tuple[float | None, float | None]]:
    """Percentile intervals of each combine over `n_boot` resamples of the items (with replacement).

    Resampling N items with replacement and grouping them by pattern is a multinomial draw of N over the
    patterns' shares, so one draw per resample replaces N index picks.
    """
    total = int(weights.sum())
    if total == 0 or n_boot <= 0:
        return [(None, None)] * len(combines)
    rng = np.random.default_rng(seed)
    shares = weights / total
    chunk = max(1, _DRAW_CELLS // max(len(weights), 1))
    draws = [rng.multinomial(total, shares, size=min(chunk, n_boot - done))
             for done in range(0, n_boot, chunk)]
    sums = np.concatenate([weighted_sum(draw, stats) for draw in draws])
    tail = (1 - confidence) / 2 * 100
    intervals: list[tuple[float | None, float | None]] = []
    for combine in combines:
        values = combine(sums)
        values = values[np.isfinite(values)]
        if values.size == 0:
            intervals.append((None, None))
            continue
        low, high = np.percentile(values, [tail, 100 - tail])
        intervals.append((float(low), float(high)))
    return intervals


def estimate(measures: dict[str, Measure], units: Units, *, n_boot: int = N_BOOT, seed: int = 0,
             confidence: float = 0.95) -> dict[str, Estimate]:
    """Every measure's value and bootstrap interval, all from the same resamples of the items."""
    parts = [measure.stats(units) for measure in measures.values()]
    edges = np.cumsum([0] + [part.shape[1] for part in parts])
    stats = np.hstack(parts) if parts else np.zeros((len(units.weights), 0))
    combines = [_sliced(measure.combine, int(lo), int(hi))
                for measure, lo, hi in zip(measures.values(), edges[:-1], edges[1:], strict=True)]
    totals = weighted_sum(units.weights, stats)
    intervals = resample(stats, units.weights, combines, n_boot=n_boot, seed=seed, confidence=confidence)
    results: dict[str, Estimate] = {}
    for name, combine, (low, high) in zip(measures, combines, intervals, strict=True):
        value = float(combine(totals))
        defined = bool(np.isfinite(value))
        results[name] = Estimate(value if defined else None, low if defined else None,
                                 high if defined else None, units.pairable)
    return results


def _sliced(combine: Combine, lo: int, hi: int) -> Combine:
    return lambda totals: combine(totals[..., lo:hi])


# --- two annotators: Cohen's kappa ---------------------------------------------------------------------


def _codes(labels: NDArray[np.generic], categories: NDArray[np.generic]) -> Ints:
    order = np.argsort(categories, kind="stable")
    position = np.searchsorted(categories[order], labels)
    found = position < categories.size
    found[found] = categories[order][position[found]] == labels[found]
    if not found.all():
        raise ValueError("a label is not among the categories")
    return order[position].astype(np.int64)


def confusion(a: ArrayLike, b: ArrayLike, categories: ArrayLike | None = None) -> Ints:
    """(V, V) counts of (a's category, b's category) over items both rated; None or NaN is missing."""
    x, y = np.asarray(a), np.asarray(b)
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        x, y = x.astype(np.float64), y.astype(np.float64)
        keep = ~np.isnan(x) & ~np.isnan(y)
    else:
        none = np.array(None, dtype=object)
        keep = np.asarray((x != none) & (y != none), bool)
    x, y = x[keep], y[keep]
    cats = np.unique(np.concatenate([x, y])) if categories is None else np.asarray(categories)
    size = cats.size
    cells = _codes(x, cats) * size + _codes(y, cats)
    return np.bincount(cells, minlength=size * size).reshape(size, size).astype(np.int64)


def kappa_from_confusion(tables: ArrayLike, weights: Weights = None) -> Floats:
    """Cohen's kappa of (..., V, V) confusion tables: 1 - sum(w * observed) / sum(w * expected), with
    disagreement weights w = [i != j], |i - j| (linear) or (i - j)^2 (quadratic) on category positions."""
    table = np.asarray(tables, np.float64)
    size = table.shape[-1]
    i, j = np.indices((size, size))
    w = {None: (i != j).astype(np.float64), "linear": np.abs(i - j).astype(np.float64),
         "quadratic": ((i - j) ** 2).astype(np.float64)}[weights]
    n = table.sum(axis=(-2, -1))
    expected = table.sum(axis=-1)[..., :, None] * table.sum(axis=-2)[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = expected / n[..., None, None]
        chance = (w * expected).sum(axis=(-2, -1))
        kappa = 1 - (w * table).sum(axis=(-2, -1)) / chance
        return np.asarray(np.where(chance > 0, kappa, np.nan), np.float64)


def cohen_kappa(a: ArrayLike, b: ArrayLike, weights: Weights = None, categories: ArrayLike | None = None
                ) -> float:
    """Chance-corrected agreement of two annotators on the same items: 1 perfect, 0 chance.

    `categories` gives the order the weights use (default: the sorted labels that occur)."""
    return float(kappa_from_confusion(confusion(a, b, categories), weights))


def cohen_estimate(a: ArrayLike, b: ArrayLike, weights: Weights = None, categories: ArrayLike | None = None,
                   *, n_boot: int = N_BOOT, seed: int = 0, confidence: float = 0.95) -> Estimate:
    table = confusion(a, b, categories)
    size = table.shape[0]
    cells = np.nonzero(table.ravel())[0]
    stats = np.eye(size * size)[cells]

    def combine(totals: Floats) -> Floats:
        return kappa_from_confusion(totals.reshape(*totals.shape[:-1], size, size), weights)

    value = float(kappa_from_confusion(table, weights))
    (low, high), = resample(stats, table.ravel()[cells], [combine], n_boot=n_boot, seed=seed,
                            confidence=confidence)
    if not np.isfinite(value):
        return Estimate(None, None, None, int(table.sum()))
    return Estimate(value, low, high, int(table.sum()))


# --- position bias: exact binomial test ----------------------------------------------------------------


def binomial_p_half(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n trials against p = 1/2.

    The distribution is symmetric, so the outcomes at most as likely as k are the two tails beyond
    min(k, n - k): p = 2 * P(X <= min(k, n - k)), capped at 1.
    """
    if n <= 0:
        return 1.0
    low = min(k, n - k)
    if 2 * low >= n:
        return 1.0
    steps = np.arange(1, low + 1, dtype=np.float64)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((n - steps + 1) / steps))])  # log C(n, i)
    top = log_choose.max()
    log_tail = top + np.log(np.exp(log_choose - top).sum()) - n * np.log(2)
    return float(min(1.0, 2 * np.exp(log_tail)))
