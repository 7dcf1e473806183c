"""The dataset card written with every export: what the file holds and how it was made, as JSON and markdown.

Pure: a Tally (filled while the lines stream) and the export's census in, the card out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.export.formats import DECIMALS, ExportFormat
from app.export.schemas import ExportOptions


@dataclass
class Tally:
    """Counts kept while an export streams; `sha256` and `bytes` cover the JSONL exactly as written."""

    lines: int = 0
    bytes: int = 0
    items_with_votes: int = 0  # pair items (or rated responses) with counted votes
    items_below_agreement: int = 0
    items_undecided: int = 0  # no preference: split, tie or both_bad won
    preferences: int = 0
    implied_pairs: int = 0  # Bradley-Terry pairs no item compared directly
    edit_pairs: int = 0  # direct edits: edit ≻ original
    agreement_sum: float = 0.0
    agreement_items: int = 0
    unanimous_items: int = 0
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    def line(self, text: str) -> None:
        data = text.encode()
        self._hash.update(data)
        self.bytes += len(data)
        self.lines += text.count("\n")

    def item(self, agreement: float | None) -> None:
        self.items_with_votes += 1
        if agreement is not None:
            self.agreement_sum += agreement
            self.agreement_items += 1
            self.unanimous_items += agreement == 1.0

    @property
    def sha256(self) -> str:
        return str(self._hash.hexdigest())


def card_json(*, project_id: int, project_name: str, filename: str, options: ExportOptions,
              census: dict[str, Any], excluded_annotators: int, tally: Tally,
              created_at: datetime) -> dict[str, Any]:
    pairwise = options.format not in (ExportFormat.RAW, ExportFormat.RATINGS)
    mean = tally.agreement_sum / tally.agreement_items if tally.agreement_items else None
    return {
        "dataset": filename,
        "project": {"id": project_id, "name": project_name},
        "created_at": created_at.isoformat(),
        "format": options.format.value,
        "style": options.style.value,
        "margin": options.margin,
        "aggregation": ({"method": options.aggregation.value, "tie_policy": options.tie_policy.value}
                        if pairwise else None),
        "filters": options.card_filters(),
        "counts": {
            "lines": tally.lines, "preferences": tally.preferences, "implied_pairs": tally.implied_pairs,
            "edit_pairs": tally.edit_pairs,
            "items_with_votes": tally.items_with_votes,
            "items_below_min_agreement": tally.items_below_agreement,
            "items_without_preference": tally.items_undecided, "judgements": census["judgements"],
            "annotators": census["annotators"], "items": census["items"],
            "excluded_annotators": excluded_annotators,
        },
        "agreement": {
            "measure": "share of an item's votes that went to its most common choice (a, b, tie, both_bad)",
            "items": tally.agreement_items,
            "mean_item_agreement": None if mean is None else round(mean, DECIMALS),
            "unanimous_share": (round(tally.unanimous_items / tally.agreement_items, DECIMALS)
                                if tally.agreement_items else None),
        },
        "models": census["models"],
        "guideline_versions": census["guideline_versions"],
        "sha256": tally.sha256,
        "bytes": tally.bytes,
    }


def _cell(value: Any) -> str:
    text = "—" if value is None or value == [] else (value if isinstance(value, str) else json.dumps(value))
    return str(text).replace("|", "\\|").replace("\n", " ")


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a markdown page (model and dataset hubs show it as the dataset's README)."""
    project = card["project"]
    lines = [f"# Dataset card: {_cell(card['dataset'])}", "",
             f"Exported by prefstudio from project {project['id']} ({_cell(project['name'])}) "
             f"at {card['created_at']}.", "",
             f"- Format: `{card['format']}` ({card['style']}, margin {'on' if card['margin'] else 'off'})",
             f"- SHA-256 of the JSONL: `{card['sha256']}` ({card['bytes']} bytes)"]
    aggregation = card["aggregation"]
    if aggregation:
        lines.append(f"- Aggregation: {aggregation['method']}, "
                     f"tie and both-bad policy `{aggregation['tie_policy']}`")
    lines += ["", "## Counts", "", "| count | value |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {_cell(value)} |" for name, value in card["counts"].items()]
    lines += ["", "## Filters", "", "| filter | value |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {_cell(value)} |" for name, value in card["filters"].items()]
    agreement = card["agreement"]
    lines += ["", "## Agreement", "",
              f"{agreement['measure'].capitalize()}, over {agreement['items']} items: "
              f"mean {_cell(agreement['mean_item_agreement'])}, unanimous share "
              f"{_cell(agreement['unanimous_share'])}."]
    lines += ["", "## Models", "", "| model | source | candidates |", "|---|---|---|"]
    lines += [f"| {_cell(m['model'])} | {m['source']} | {m['candidates']} |" for m in card["models"]]
    lines += ["", "## Guideline versions", "", "| version | judgements |", "|---|---|"]
    lines += [f"| {_cell(v['version'])} | {v['judgements']} |" for v in card["guideline_versions"]]
    return "\n".join(lines) + "\n"
