"""Aggregation of an item's votes into a preference: majority vote and Dawid-Skene per item, and the
policy for tie and both_bad votes. Bradley-Terry over a prompt's candidates is in app/export/ranking.py.

Pure: plain votes (or numpy arrays of them) in, Verdicts out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.errors import Invalid

PREFERENCES = ("a", "b")
NON_PREFERENCES = ("tie", "both_bad")
CHOICES = PREFERENCES + NON_PREFERENCES  # the label codes 0..3 used by dawid_skene
DEFAULT_STRENGTH = 1  # a vote for a or b stored without a strength counts as "slightly better"
DS_SMOOTHING = 0.01  # pseudo-count added to every confusion-matrix cell: no log(0), no 0/0
DS_DIAGONAL = 1.0  # and one pseudo-vote per annotator and class for the right label: better than chance
DS_MAX_ITERATIONS = 200
DS_TOLERANCE = 1e-7


class TiePolicy(enum.StrEnum):
    """What tie and both_bad votes do (docs/formats.md, "Aggregation", states it per aggregator).

    DROP: they are votes like any other; an item they win (or share the lead in) has no preference pair.
    IGNORE: they are set aside before aggregation; the pair is decided by the a and b votes alone.
    HALF: each counts half a vote for a and half for b: it never decides a pair, but it dilutes it.
    """

    DROP = "drop"
    IGNORE = "ignore"
    HALF = "half"


@dataclass(frozen=True)
class Vote:
    choice: str | None  # canonical: "a", "b", "tie", "both_bad"; None (a Likert judgement) is no vote
    strength: int | None = None  # 1 slightly, 2 clearly, 3 much better


@dataclass(frozen=True)
class Verdict:
    winner: str  # "a" or "b"
    n_votes: int  # the counted votes
    agreement: float  # the winner's (weighted) votes / n_votes
    margin: float  # mean signed strength over the counted votes, in strength units (-3..3)
    confidence: float  # the aggregator's probability that the winner is preferred


def parse_policy(value: str) -> TiePolicy:
    try:
        return TiePolicy(value)
    except ValueError:
        allowed = ", ".join(p.value for p in TiePolicy)
        raise Invalid(f"unknown tie policy {value!r}: use one of {allowed}", field="tie_policy") from None


@dataclass(frozen=True, slots=True)
class Counts:
    """An item's votes as counts per choice, and the summed strengths of the a and b votes (a vote stored
    without a strength counts DEFAULT_STRENGTH): all that majority, Dawid-Skene's verdict and
    Bradley-Terry need, and what the export's query computes in the database."""

    a: int = 0
    b: int = 0
    tie: int = 0
    both_bad: int = 0
    strength_a: int = 0
    strength_b: int = 0

    @classmethod
    def of(cls, votes: Iterable[Vote]) -> Counts:
        n = dict.fromkeys(CHOICES, 0)
        strength = {"a": 0, "b": 0}
        for vote in votes:
            if vote.choice in n:
                n[vote.choice] += 1
                if vote.choice in strength:
                    strength[vote.choice] += DEFAULT_STRENGTH if vote.strength is None else vote.strength
        return cls(n["a"], n["b"], n["tie"], n["both_bad"], strength["a"], strength["b"])

    def counted(self, policy: TiePolicy) -> int:
        preferences = self.a + self.b
        return preferences if policy is TiePolicy.IGNORE else preferences + self.tie + self.both_bad

    def weight(self, side: str, policy: TiePolicy) -> float:
        """The votes for `side` ("a" or "b"): under HALF, half of every tie and both_bad vote too."""
        own = self.a if side == "a" else self.b
        return own + (self.tie + self.both_bad) / 2 if policy is TiePolicy.HALF else float(own)

    def signed_mean(self, winner: str, policy: TiePolicy) -> float:
        """Mean over the counted votes of +strength (winner), -strength (loser), 0 (tie or both_bad)."""
        n = self.counted(policy)
        gap = self.strength_a - self.strength_b
        return (gap if winner == "a" else -gap) / n if n else 0.0


def counted_votes(votes: Iterable[Vote], policy: TiePolicy) -> list[Vote]:
    keep = PREFERENCES if policy is TiePolicy.IGNORE else CHOICES
    return [vote for vote in votes if vote.choice in keep]


def item_agreement(votes: Iterable[Vote] | Counts) -> float | None:
    """Share of the item's votes (a, b, tie, both_bad) that went to its most common choice."""
    c = votes if isinstance(votes, Counts) else Counts.of(votes)
    total = c.a + c.b + c.tie + c.both_bad
    return max(c.a, c.b, c.tie, c.both_bad) / total if total else None


def majority(votes: Iterable[Vote] | Counts, *, tie_policy: TiePolicy | str = TiePolicy.DROP
             ) -> Verdict | None:
    """The item's preference, or None when a or b has no strict plurality of the counted votes.

    None when there are no counted votes, when two choices share the lead, and, under DROP, when tie or
    both_bad leads. `confidence` is the agreement.
    """
    policy = tie_policy if type(tie_policy) is TiePolicy else parse_policy(tie_policy)
    c = votes if isinstance(votes, Counts) else Counts.of(votes)
    # Counts.counted, weight and signed_mean written out: this runs once per item of an export.
    others = c.tie + c.both_bad
    if policy is TiePolicy.IGNORE:
        n, wa, wb = c.a + c.b, float(c.a), float(c.b)
    elif policy is TiePolicy.HALF:
        n, wa, wb = c.a + c.b + others, c.a + others / 2, c.b + others / 2
    else:
        n, wa, wb = c.a + c.b + others, float(c.a), float(c.b)
    if not n or wa == wb:
        return None
    if wa > wb:
        winner, lead, gap = "a", wa, c.strength_a - c.strength_b
    else:
        winner, lead, gap = "b", wb, c.strength_b - c.strength_a
    if policy is TiePolicy.DROP and max(c.tie, c.both_bad) >= lead:
        return None  # tie or both_bad leads, or shares the lead
    agreement = lead / n
    return Verdict(winner=winner, n_votes=n, agreement=agreement, margin=gap / n, confidence=agreement)


def signed_mean(votes: Sequence[Vote], winner: str) -> float:
    """Mean over votes of +strength (for the winner), -strength (for the loser), 0 (tie or both_bad)."""
    return Counts.of(votes).signed_mean(winner, TiePolicy.DROP)


@dataclass(frozen=True)
class Labels:
    """Votes as arrays: observation n is annotator[n]'s label[n] (index into CHOICES) on item[n]."""

    item: NDArray[np.int64]  # 0..n_items-1
    annotator: NDArray[np.int64]  # 0..n_annotators-1
    label: NDArray[np.int64]  # 0 a, 1 b, 2 tie, 3 both_bad

    @classmethod
    def of(cls, items: Sequence[int], annotators: Sequence[int], choices: Sequence[str]) -> Labels:
        """From item ids, annotator ids and choices in any numbering: each renumbered densely."""
        _, item = np.unique(np.asarray(items, np.int64), return_inverse=True)
        _, annotator = np.unique(np.asarray(annotators, np.int64), return_inverse=True)
        code = {choice: n for n, choice in enumerate(CHOICES)}
        label = np.fromiter((code[c] for c in choices), np.int64, count=len(choices))
        return cls(item.astype(np.int64), annotator.astype(np.int64), label)


@dataclass(frozen=True)
class Posterior:
    """Dawid-Skene's fit: per item, the probability of each true class; per annotator, a confusion matrix."""

    classes: tuple[str, ...]  # the true classes: ("a", "b") or CHOICES
    items: NDArray[np.float64]  # n_items x n_classes
    confusion: NDArray[np.float64]  # n_annotators x n_classes x 4 observed labels
    prior: NDArray[np.float64]  # n_classes
    iterations: int


def ds_classes(policy: TiePolicy) -> tuple[str, ...]:
    """DROP: the truth may be a tie or both bad; IGNORE and HALF: it is a or b (under HALF a tie vote is
    evidence whose weight each annotator's confusion matrix learns; under IGNORE it is left out)."""
    return CHOICES if policy is TiePolicy.DROP else PREFERENCES


def item_posteriors(labels: Labels, prior: NDArray[np.float64], confusion: NDArray[np.float64],
                    n_items: int) -> NDArray[np.float64]:
    """The E-step: P(true class | votes) ∝ prior · Π over the item's votes of
    confusion[annotator, class, label]."""
    log = np.tile(np.log(prior), (n_items, 1))
    np.add.at(log, labels.item, np.log(confusion[labels.annotator, :, labels.label]))
    log -= log.max(axis=1, keepdims=True)
    post = np.exp(log)
    return np.asarray(post / post.sum(axis=1, keepdims=True), np.float64)


def _initial(labels: Labels, n_items: int, n_classes: int) -> NDArray[np.float64]:
    """Vote shares (a tie split between a and b when the classes are only a and b)."""
    share = np.zeros((n_items, 4))
    np.add.at(share, (labels.item, labels.label), 1.0)
    if n_classes == 2:
        share = share[:, :2] + share[:, 2:].sum(axis=1, keepdims=True) / 2
    totals = share.sum(axis=1, keepdims=True)
    return np.asarray(np.where(totals > 0, share / np.maximum(totals, 1e-12), 1.0 / n_classes), np.float64)


def dawid_skene(labels: Labels, *, tie_policy: TiePolicy | str = TiePolicy.DROP,
                n_items: int | None = None, n_annotators: int | None = None) -> Posterior:
    """EM over per-annotator confusion matrices (Dawid & Skene 1979), started from the vote shares."""
    policy = parse_policy(tie_policy)
    classes = ds_classes(policy)
    if policy is TiePolicy.IGNORE:
        keep = labels.label < 2
        labels = Labels(labels.item[keep], labels.annotator[keep], labels.label[keep])
    items = int(labels.item.max(initial=-1)) + 1 if n_items is None else n_items
    people = int(labels.annotator.max(initial=-1)) + 1 if n_annotators is None else n_annotators
    post = _initial(labels, items, len(classes))
    prior = np.full(len(classes), 1.0 / len(classes))
    confusion = np.full((people, len(classes), 4), 0.25)
    iterations = 0
    for iterations in range(1, DS_MAX_ITERATIONS + 1):  # noqa: B007 (the count is reported)
        counts = np.full((people, len(classes), 4), DS_SMOOTHING)
        counts[:, np.arange(len(classes)), np.arange(len(classes))] += DS_DIAGONAL
        for k in range(len(classes)):
            np.add.at(counts[:, k, :], (labels.annotator, labels.label), post[labels.item, k])
        confusion = counts / counts.sum(axis=2, keepdims=True)
        prior = (post.sum(axis=0) + DS_SMOOTHING) / (items + DS_SMOOTHING * len(classes))
        updated = item_posteriors(labels, prior, confusion, items)
        change = float(np.abs(updated - post).max(initial=0.0))
        post = updated
        if change < DS_TOLERANCE:
            break
    return Posterior(classes, post, confusion, prior, iterations)


def ds_verdict(votes: Counts, posterior: NDArray[np.float64], classes: Sequence[str],
               policy: TiePolicy) -> Verdict | None:
    """An item's verdict from its Dawid-Skene posterior: the most probable class, if it is a or b."""
    n = votes.counted(policy)
    best = int(np.argmax(posterior))
    if not n or classes[best] not in PREFERENCES or np.sum(posterior == posterior[best]) > 1:
        return None
    winner = classes[best]
    return Verdict(winner=winner, n_votes=n, agreement=votes.weight(winner, policy) / n,
                   margin=votes.signed_mean(winner, policy), confidence=float(posterior[best]))
