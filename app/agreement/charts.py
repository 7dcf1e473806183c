"""Server-side SVG charts, pure: the geometry of a line with a confidence band, and of bars.

`templates/agreement/_chart.html` draws a Chart as SVG, autoescaped like every template (so labels need
no escaping here, and no markup is built in Python), with presentation attributes only (fill=, stroke=,
...): the CSP allows no inline style. Each chart carries a <title> and a <desc> (role="img"), and each
point or bar a <title>, which browsers show as a tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28  # margins around the plot area


@dataclass(frozen=True)
class BandPoint:
    label: str  # the x value as shown, e.g. a date
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Mark:
    """A point (x, y) or a bar (x, y, width, height), with its tooltip."""

    x: float
    y: float
    tip: str
    width: float = 0.0
    height: float = 0.0


@dataclass(frozen=True)
class Chart:
    chart_id: str
    title: str
    desc: str
    width: int
    height: int
    grid: list[float] = field(default_factory=list)  # y of each horizontal grid line
    texts: list[Text] = field(default_factory=list)  # axis labels
    bands: list[str] = field(default_factory=list)  # polygon points of each confidence band
    lines: list[str] = field(default_factory=list)  # polyline points of each run of values
    points: list[Mark] = field(default_factory=list)
    bars: list[Mark] = field(default_factory=list)

    @property
    def left(self) -> int:
        return LEFT

    @property
    def right(self) -> int:
        return self.width - RIGHT


@dataclass(frozen=True)
class Frame:
    """The plot area and the y range mapped onto it."""

    width: int
    height: int
    y_min: float
    y_max: float

    def x(self, i: int, n: int) -> float:
        span = self.width - LEFT - RIGHT
        return LEFT + (span / 2 if n <= 1 else span * i / (n - 1))

    def y(self, value: float) -> float:
        share = (value - self.y_min) / (self.y_max - self.y_min or 1)
        return round(TOP + (1 - share) * (self.height - TOP - BOTTOM), 1)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"


def _axes(frame: Frame, labels: Sequence[str], xs: Sequence[float], ticks: Sequence[float]
          ) -> tuple[list[float], list[Text]]:
    grid = [frame.y(tick) for tick in ticks]
    texts = [Text(LEFT - 6, y + 4, _number(tick), "end") for y, tick in zip(grid, ticks, strict=True)]
    n = len(labels)
    shown = sorted({0, n // 2, n - 1}) if n > 3 else range(n)  # first, middle and last: never crowded
    for i in shown:
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        texts.append(Text(round(xs[i], 1), frame.height - 8, labels[i], anchor))
    return grid, texts


def _runs(present: Sequence[bool]) -> list[list[int]]:
    """Indices of consecutive present points: a missing point splits a line or a band."""
    runs: list[list[int]] = [[]]
    for i, here in enumerate(present):
        if here:
            runs[-1].append(i)
        else:
            runs.append([])
    return [run for run in runs if run]


def _tip(point: BandPoint) -> str:
    assert point.value is not None
    band = "" if point.low is None or point.high is None else \
        f" (95% interval {_number(point.low)} to {_number(point.high)})"
    return f"{point.label}: {_number(point.value)}{band}"


def line_chart(points: Sequence[BandPoint], *, chart_id: str, title: str, desc: str,
               y_range: tuple[float, float] | None = None, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """A line through the values over a band from low to high; undefined values leave gaps.

    The y range defaults to the data's, widened to include 0 and 1 (agreement measures live there)."""
    values = [v for p in points for v in (p.value, p.low, p.high) if v is not None]
    low, high = y_range or (min([0.0, *values]), max([1.0, *values]))
    frame = Frame(width, height, low, high)
    xs = [round(frame.x(i, len(points)), 1) for i in range(len(points))]
    grid, texts = _axes(frame, [p.label for p in points], xs, [low + (high - low) * i / 4 for i in range(5)])
    bands = []
    for run in _runs([p.low is not None and p.high is not None for p in points]):
        edge = [(i, points[i].high) for i in run] + [(i, points[i].low) for i in reversed(run)]
        bands.append(" ".join(f"{xs[i]},{frame.y(v or 0.0)}" for i, v in edge))
    lines = [" ".join(f"{xs[i]},{frame.y(points[i].value or 0.0)}" for i in run)
             for run in _runs([p.value is not None for p in points])]
    marks = [Mark(x, frame.y(p.value), _tip(p))
             for x, p in zip(xs, points, strict=True) if p.value is not None]
    return Chart(chart_id, title, desc, width, height, grid, texts, bands, lines, points=marks)


def bar_chart(bars: Sequence[tuple[str, int]], *, chart_id: str, title: str, desc: str, width: int = WIDTH,
              height: int = HEIGHT) -> Chart:
    """One bar per (label, count), from zero."""
    top = max([1, *(count for _, count in bars)])
    frame = Frame(width, height, 0.0, float(top))
    slot = (width - LEFT - RIGHT) / max(len(bars), 1)
    xs = [LEFT + (i + 0.5) * slot for i in range(len(bars))]
    grid, texts = _axes(frame, [label for label, _ in bars], xs, [0.0, top / 2, float(top)])
    marks = [Mark(round(x - slot * 0.4, 1), frame.y(count), f"{label}: {count}", round(max(slot * 0.8, 1), 1),
                  round(frame.y(0) - frame.y(count), 1))
             for x, (label, count) in zip(xs, bars, strict=True)]
    return Chart(chart_id, title, desc, width, height, grid, texts, bars=marks)
