"""Calibration of a reward model on held-out pairs: accuracy, ECE, Brier, NLL, reliability bins, and the plot.

Pure Python (matplotlib only inside `write_reliability_png`), so the web process may import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CALIBRATION_BINS = 10


def calibration_metrics(differences: Sequence[float], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Accuracy, ECE, Brier and NLL of p = sigmoid(r_c - r_r) against "the chosen side wins".

    ECE and the reliability bins use the confidence max(p, 1 - p) in `bins` equal bins over [0.5, 1]
    against whether the side the model prefers is the chosen one (a tie counts as wrong).
    None everywhere when there is nothing to evaluate.
    """
    if not differences:
        return {"accuracy": None, "ece": None, "brier": None, "nll": None, "reliability": []}
    n = len(differences)
    probabilities = [_sigmoid(d) for d in differences]
    correct = [d > 0 for d in differences]
    confidences = [max(p, 1.0 - p) for p in probabilities]
    reliability = []
    ece = 0.0
    for index in range(bins):
        lower, upper = 0.5 + 0.5 * index / bins, 0.5 + 0.5 * (index + 1) / bins
        members = [i for i, c in enumerate(confidences) if _bin_of(c, bins) == index]
        confidence = sum(confidences[i] for i in members) / len(members) if members else None
        accuracy = sum(correct[i] for i in members) / len(members) if members else None
        if confidence is not None and accuracy is not None:
            ece += len(members) / n * abs(accuracy - confidence)
        reliability.append(
            {
                "lower": lower,
                "upper": upper,
                "count": len(members),
                "confidence": confidence,
                "accuracy": accuracy,
            }
        )
    return {
        "accuracy": sum(correct) / n,
        "ece": ece,
        "brier": sum((1.0 - p) ** 2 for p in probabilities) / n,
        "nll": sum(_softplus(-d) for d in differences) / n,  # -log sigmoid(d), stable for large |d|
        "reliability": reliability,
    }


def _bin_of(confidence: float, bins: int) -> int:
    return min(int((confidence - 0.5) * 2 * bins), bins - 1)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def write_reliability_png(reliability: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """A reliability diagram: accuracy per confidence bin against the diagonal, counts as bar labels."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in a worker
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot()
    axes.plot([0.5, 1.0], [0.5, 1.0], linestyle="--", color="grey", label="perfect calibration")
    filled = [bin_ for bin_ in reliability if bin_["count"]]
    if filled:
        centres = [(bin_["lower"] + bin_["upper"]) / 2 for bin_ in filled]
        widths = [bin_["upper"] - bin_["lower"] for bin_ in filled]
        bars = axes.bar(centres, [bin_["accuracy"] for bin_ in filled], width=widths, alpha=0.6,
                        edgecolor="black", label="accuracy in bin")
        axes.bar_label(bars, labels=[str(bin_["count"]) for bin_ in filled], fontsize=7)
        axes.plot([bin_["confidence"] for bin_ in filled], [bin_["accuracy"] for bin_ in filled],
                  marker="o", color="C1", label="mean confidence")
    axes.set_xlim(0.5, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xlabel("confidence max(p, 1 - p), p = sigmoid(r_chosen - r_rejected)")
    axes.set_ylabel("share where the preferred side is the chosen one")
    axes.set_title(title or "Reliability on held-out pairs")
    axes.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
