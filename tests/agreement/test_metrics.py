"""The agreement measures: hand-computed values, the reference packages on random matrices with missing
values (to 1e-9), and the bootstrap."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from app.agreement import metrics

NAN = math.nan
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def random_matrix(seed: int, items: int = 60, annotators: int = 5, values: int = 5,
                  missing: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(1, values + 1, size=(items, annotators)).astype(float)
    matrix[rng.random(matrix.shape) < missing] = np.nan
    return matrix


# --- hand-computed values --------------------------------------------------------------------------------


def test_cohen_kappa_hand_computed_example() -> None:
    # observed 3/4, expected (2·1 + 2·3)/16 = 1/2 → kappa = (3/4 - 1/2) / (1/2)
    assert metrics.cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.5)


def test_weighted_cohen_kappa_hand_computed() -> None:
    # pairs (1,1) (2,3) (3,3); row sums 1,1,1, column sums 1,0,2 → expected cell (i, j) = c_j / 3.
    # linear: observed sum |i-j| = 1; expected = 4/3 + 1 + 2/3 = 3 → kappa = 1 - 1/3
    # quadratic: observed 1; expected = 8/3 + 1 + 4/3 = 5 → kappa = 1 - 1/5
    assert metrics.cohen_kappa([1, 2, 3], [1, 3, 3], "linear") == pytest.approx(2 / 3)
    assert metrics.cohen_kappa([1, 2, 3], [1, 3, 3], "quadratic") == pytest.approx(0.8)


def test_krippendorff_alpha_hand_computed_with_missing_values() -> None:
    # unit 1 (a, a): o_aa += 2·1/1 = 2; unit 2 (a, b, b): o_ab = o_ba += 1·2/2 = 1, o_bb += 2·1/2 = 1;
    # unit 3 has one value: not pairable. n_a = 3, n_b = 2, n = 5.
    # alpha = 1 - (n - 1) · sum(o·delta) / sum(n_c·n_k·delta) = 1 - 4 · 2 / (2·3·2) = 1/3
    matrix = [[0, 0, NAN], [0, 1, 1], [1, NAN, NAN]]
    assert metrics.krippendorff_alpha(matrix, "nominal") == pytest.approx(1 / 3)
    assert metrics.units_from_matrix(matrix).pairable == 2


def test_krippendorff_interval_hand_computed() -> None:
    # units (1,2) (2,3) (1,3): each value twice, n = 6; sum(o·d²) = 2·(1 + 1 + 4) = 12;
    # sum(n_c·n_k·d²) = 2·2·(2·1 + 2·1 + 2·4) = 48 → alpha = 1 - 5 · 12 / 48 = -0.25
    assert metrics.krippendorff_alpha([[1, 2], [2, 3], [1, 3]], "interval") == pytest.approx(-0.25)


def test_perfect_agreement_is_one_and_a_single_value_is_undefined() -> None:
    assert metrics.krippendorff_alpha([[1, 1], [2, 2, ]], "ordinal") == pytest.approx(1.0)
    assert math.isnan(metrics.krippendorff_alpha([[1, 1], [1, 1]], "nominal"))


def test_fleiss_kappa_and_gwet_ac1_hand_computed() -> None:
    # items (0,0,0) (0,0,1) (1,1,1): P_i = 1, 2/6, 1 → mean 7/9; p_0 = 5/9, p_1 = 4/9.
    # Fleiss: chance 25/81 + 16/81 = 41/81 → (63/81 - 41/81) / (40/81) = 22/40
    # Gwet: pi_0 = mean(n_0 / m) = (1 + 2/3 + 0)/3 = 5/9; p_e = 2 · (5/9)(4/9) / (2 - 1) = 40/81
    #       → (63/81 - 40/81) / (41/81) = 23/41
    matrix = [[0, 0, 0], [0, 0, 1], [1, 1, 1]]
    assert metrics.fleiss_kappa(matrix) == pytest.approx(22 / 40)
    assert metrics.gwet_ac1(matrix) == pytest.approx(23 / 41)


def test_fleiss_kappa_with_varying_numbers_of_ratings() -> None:
    # (0,0) P=1; (0,1,1) P = 2/6; (1) has one rating: left out. Totals n_0 = 3, n_1 = 2 of 5.
    # mean P = (1 + 1/3)/2 = 2/3; chance = 9/25 + 4/25 = 13/25 → (2/3 - 13/25) / (12/25) = 11/36
    assert metrics.fleiss_kappa([[0, 0, NAN], [0, 1, 1], [1, NAN, NAN]]) == pytest.approx(11 / 36)


def test_percent_agreement_with_and_without_ties() -> None:
    # codes a=0, tie=1, b=2. (a, tie, a): 1 agreeing pair of 3; (b, b, tie): 1 of 3 → 1/3.
    # without ties: (a, a) and (b, b) agree fully → 1.
    matrix = [[0, 1, 0], [2, 2, 1]]
    units = metrics.units_from_matrix(matrix, values=[0, 1, 2])
    assert metrics.percent_agreement(units) == pytest.approx(1 / 3)
    assert metrics.percent_agreement(units, ignore=[1]) == pytest.approx(1.0)


def test_binomial_p_value_hand_computed() -> None:
    # P(X <= 2 | n = 10) = (1 + 10 + 45) / 1024 → two-sided 112/1024
    assert metrics.binomial_p_half(2, 10) == pytest.approx(112 / 1024)
    assert metrics.binomial_p_half(8, 10) == pytest.approx(112 / 1024)
    assert metrics.binomial_p_half(5, 10) == 1.0
    assert metrics.binomial_p_half(0, 0) == 1.0


# --- the reference packages ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_the_krippendorff_package(seed: int, level: str) -> None:
    matrix = random_matrix(seed, annotators=2 + seed % 4)
    expected = krippendorff.alpha(reliability_data=matrix.T, level_of_measurement=level)
    assert metrics.krippendorff_alpha(matrix, level) == pytest.approx(expected, abs=1e-9)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_fleiss_kappa_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    complete = rng.integers(0, 4, size=(50, 3 + seed % 3))
    table, _ = aggregate_raters(complete)
    assert metrics.fleiss_kappa(complete.astype(float)) == pytest.approx(statsmodels_fleiss(table), abs=1e-9)


def test_fleiss_kappa_matches_statsmodels_when_missing_cells_leave_equal_counts() -> None:
    # every item keeps 3 of 5 ratings, in different columns: statsmodels' table has 3 raters per item
    rng = np.random.default_rng(7)
    matrix = rng.integers(0, 3, size=(40, 5)).astype(float)
    for row in matrix:
        row[rng.choice(5, size=2, replace=False)] = np.nan
    table = np.stack([(matrix == c).sum(axis=1) for c in range(3)], axis=1)
    assert metrics.fleiss_kappa(matrix) == pytest.approx(statsmodels_fleiss(table), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_scikit_learn_with_missing_values(seed: int, weights: str | None) -> None:
    matrix = random_matrix(seed, items=80, annotators=2, values=4, missing=0.2)
    both = ~np.isnan(matrix).any(axis=1)
    expected = cohen_kappa_score(matrix[both, 0], matrix[both, 1], weights=weights)
    ours = metrics.cohen_kappa(matrix[:, 0], matrix[:, 1], weights)  # type: ignore[arg-type]
    assert ours == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 10), (7, 10), (480, 1000), (10, 11), (1, 40)])
def test_binomial_p_matches_scipy(k: int, n: int) -> None:
    assert metrics.binomial_p_half(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9)


def test_collapsing_identical_items_changes_no_measure() -> None:
    matrix = random_matrix(3, items=200, annotators=3, values=3, missing=0.1)
    units = metrics.units_from_matrix(matrix)
    assert units.weights.sum() == 200 and len(units.weights) < 200  # identical items share a row
    expected = krippendorff.alpha(reliability_data=matrix.T, level_of_measurement="ordinal")
    assert metrics.krippendorff_alpha(units, "ordinal") == pytest.approx(expected, abs=1e-12)


def test_values_outside_the_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        metrics.units_from_matrix([[1, 9]], values=[1, 2, 3])
    with pytest.raises(ValueError, match="not among the categories"):
        metrics.cohen_kappa(["a", "c"], ["a", "b"], categories=["a", "b"])


# --- the bootstrap ---------------------------------------------------------------------------------------


def _naive_alpha_bootstrap(matrix: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Resample rows with replacement, the textbook way (a loop: fine in a test)."""
    rng = np.random.default_rng(seed)
    rows = len(matrix)
    return np.array([metrics.krippendorff_alpha(matrix[rng.integers(0, rows, rows)], "nominal")
                     for _ in range(n_boot)])


def test_pattern_bootstrap_matches_resampling_items_one_by_one() -> None:
    matrix = random_matrix(11, items=150, annotators=3, values=3, missing=0.2)
    matrix[:75, 1] = matrix[:75, 0]  # some agreement, so the interval is not centred on 0
    units = metrics.units_from_matrix(matrix)
    ours = metrics.estimate({"a": metrics.alpha_measure("nominal", units.values)}, units, n_boot=3000,
                            seed=1)["a"]
    naive = np.percentile(_naive_alpha_bootstrap(matrix, 1500, seed=2), [2.5, 97.5])
    assert ours.low is not None and ours.high is not None and ours.value is not None
    assert ours.low < ours.value < ours.high
    assert ours.low == pytest.approx(naive[0], abs=0.03)
    assert ours.high == pytest.approx(naive[1], abs=0.03)


def test_bootstrap_is_seeded_and_shared_across_measures() -> None:
    units = metrics.units_from_matrix(random_matrix(5))
    measures = {"alpha": metrics.alpha_measure("interval", units.values), "fleiss": metrics.fleiss_measure(),
                "ac1": metrics.gwet_measure(5), "percent": metrics.percent_measure()}
    first = metrics.estimate(measures, units, n_boot=300, seed=4)
    assert metrics.estimate(measures, units, n_boot=300, seed=4) == first
    assert metrics.estimate(measures, units, n_boot=300, seed=5)["alpha"] != first["alpha"]
    alone = metrics.estimate({"alpha": measures["alpha"]}, units, n_boot=300, seed=4)["alpha"]
    assert alone == first["alpha"]
    for estimate in first.values():
        assert estimate.low is not None and estimate.high is not None and estimate.value is not None
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.n_items == units.pairable


def test_interval_narrows_with_more_items_and_is_a_point_for_perfect_agreement() -> None:
    small = metrics.units_from_matrix(random_matrix(8, items=30))
    large = metrics.units_from_matrix(random_matrix(8, items=3000))
    width = {}
    for name, units in (("small", small), ("large", large)):
        e = metrics.estimate({"a": metrics.alpha_measure("ordinal", units.values)}, units, n_boot=400)["a"]
        assert e.low is not None and e.high is not None
        width[name] = e.high - e.low
    assert width["large"] < width["small"] / 4
    perfect = metrics.units_from_matrix([[1, 1], [2, 2], [3, 3]])
    e = metrics.estimate({"p": metrics.percent_measure()}, perfect, n_boot=100)["p"]
    assert (e.value, e.low, e.high) == (1.0, 1.0, 1.0)


def test_undefined_measures_have_no_interval() -> None:
    units = metrics.units_from_matrix([[1, NAN], [2, NAN]])  # nothing pairable
    e = metrics.estimate({"a": metrics.alpha_measure("nominal", units.values)}, units, n_boot=50)["a"]
    assert (e.value, e.low, e.high, e.n_items) == (None, None, None, 0)


def test_no_values_at_all_leave_every_measure_undefined() -> None:
    units = metrics.collapse(np.zeros((3, 4), np.int64), np.arange(4.0))
    measures = {"alpha": metrics.alpha_measure("ordinal", units.values), "fleiss": metrics.fleiss_measure(),
                "ac1": metrics.gwet_measure(4), "percent": metrics.percent_measure()}
    for e in metrics.estimate(measures, units, n_boot=20).values():
        assert (e.value, e.low, e.high, e.n_items) == (None, None, None, 0)


def test_cohen_estimate_interval_contains_the_value() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(1, 6, 300))
    e = metrics.cohen_estimate(a, b, "quadratic", n_boot=500)
    assert e.value == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"), abs=1e-9)
    assert e.low is not None and e.high is not None and e.low < e.value < e.high
    assert e.n_items == 300
