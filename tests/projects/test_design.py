from __future__ import annotations

import itertools
from collections import Counter

import pytest

from app.projects.design import choose_pairs, pairs_of_ids


@pytest.mark.parametrize("n, expected", [(0, 0), (1, 0), (2, 1), (3, 3), (4, 6)])
def test_up_to_four_candidates_every_pair_is_judged(n: int, expected: int) -> None:
    pairs = choose_pairs(n, seed=1)
    assert len(pairs) == expected
    assert set(pairs) == set(itertools.combinations(range(n), 2))


@pytest.mark.parametrize("n", [5, 6, 7, 8, 11, 16])
def test_above_four_each_candidate_is_in_exactly_four_distinct_pairs(n: int) -> None:
    for seed in range(20):
        pairs = choose_pairs(n, seed=seed)
        assert len(pairs) == len(set(pairs)) == 2 * n
        assert all(0 <= a < b < n for a, b in pairs)
        degree = Counter(index for pair in pairs for index in pair)
        assert set(degree.values()) == {4}, degree


def _connected(n: int, pairs: list[tuple[int, int]]) -> bool:
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for a, b in pairs:
            for here, there in ((a, b), (b, a)):
                if here == node and there not in reached:
                    reached.add(there)
                    frontier.append(there)
    return len(reached) == n


def test_the_sampled_design_connects_all_candidates_so_a_ranking_can_be_fitted() -> None:
    assert all(_connected(n, choose_pairs(n, seed=seed)) for n in range(5, 17) for seed in range(10))


def test_the_design_is_fixed_by_the_seed_and_varies_between_seeds() -> None:
    assert choose_pairs(9, seed=42) == choose_pairs(9, seed=42)
    assert len({tuple(choose_pairs(9, seed=seed)) for seed in range(10)}) > 1


def test_pairs_of_ids_are_in_canonical_order_smaller_id_first() -> None:
    pairs = pairs_of_ids([30, 10, 20], seed=0)
    assert pairs == [(10, 20), (10, 30), (20, 30)]
    assert all(a < b for a, b in pairs_of_ids([9, 3, 7, 1, 5, 11], seed=3))


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError):
        choose_pairs(-1, seed=0)
