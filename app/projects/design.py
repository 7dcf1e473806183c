"""Which pairs of a prompt's candidates annotators compare (pure).

Up to four candidates every pair is judged (at most 6 pairs). Above that the number of pairs grows
quadratically, so we judge a balanced sample instead: a circulant graph on a seeded random order of the
candidates, that is a cycle (every candidate next to two others, so the comparison graph is connected
and a ranking can be fitted) plus one set of chords at a random step. Every candidate then appears in
exactly four pairs, and there are 2n pairs for n candidates.
"""

from __future__ import annotations

import itertools
import random

ALL_PAIRS_UP_TO = 4


def choose_pairs(n: int, *, seed: int) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, over candidates 0..n-1, sorted; the same (n, seed) gives the same pairs."""
    if n < 0:
        raise ValueError("n must not be negative")
    if n <= ALL_PAIRS_UP_TO:
        return list(itertools.combinations(range(n), 2))
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    # Steps 2..(n-1)//2 give n new distinct pairs each; step n/2 would give only n/2, steps 1 and n-1 repeat
    # the cycle. n = 5 and n = 6 admit only step 2 (n = 5: the result is every pair).
    step = rng.randint(2, (n - 1) // 2)
    pairs: set[tuple[int, int]] = set()
    for position in range(n):
        for offset in (1, step):
            a, b = order[position], order[(position + offset) % n]
            pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


def pairs_of_ids(candidate_ids: list[int], *, seed: int) -> list[tuple[int, int]]:
    """The chosen pairs as candidate ids in canonical order (smaller id first)."""
    ids = sorted(candidate_ids)
    return [(ids[i], ids[j]) for i, j in choose_pairs(len(ids), seed=seed)]
