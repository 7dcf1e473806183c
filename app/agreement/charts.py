"""Server-side SVG charts, pure: a line with a confidence band, and bars.

Only presentation attributes (fill=, stroke=, ...) and classes: the CSP allows no inline style. Every label
is escaped; each chart carries a <title> and a <desc> (role="img"), and each point or bar a <title>, which
browsers show as a tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28  # margins around the plot area
ACCENT, BAND, GRID, TEXT = "#0b5cad", "#cfe0f3", "#d0d7de", "#57606a"  # app.css colours


@dataclass(frozen=True)
class BandPoint:
    label: str  # the x value as shown, e.g. a date
    value: float | None
    low: float | None = None
    high: float | None = None


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
        return TOP + (1 - share) * (self.height - TOP - BOTTOM)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"


def _open(chart_id: str, title: str, desc: str, frame: Frame) -> list[str]:
    ident = escape(chart_id)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="100%" '
            f'viewBox="0 0 {frame.width} {frame.height}" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc">',
            f'<title id="{ident}-title">{escape(title)}</title>',
            f'<desc id="{ident}-desc">{escape(desc)}</desc>']


def _text(x: float, y: float, label: str, anchor: str) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" fill="{TEXT}" text-anchor="{anchor}">'
            f"{escape(label)}</text>")


def _axes(frame: Frame, labels: Sequence[str], xs: Sequence[float], ticks: Sequence[float]) -> list[str]:
    parts = []
    for tick in ticks:
        y = frame.y(tick)
        parts.append(f'<line x1="{LEFT}" x2="{frame.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(LEFT - 6, y + 4, _number(tick), "end"))
    n = len(labels)
    shown = sorted({0, n // 2, n - 1}) if n > 3 else range(n)  # first, middle and last: never crowded
    for i in shown:
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(_text(xs[i], frame.height - 8, labels[i], anchor))
    return parts


def _runs(present: Sequence[bool]) -> list[list[int]]:
    """Indices of consecutive present points: a missing point splits a line or a band."""
    runs: list[list[int]] = [[]]
    for i, here in enumerate(present):
        if here:
            runs[-1].append(i)
        else:
            runs.append([])
    return [run for run in runs if run]


def _point(frame: Frame, x: float, point: BandPoint) -> str:
    assert point.value is not None
    band = "" if point.low is None or point.high is None else \
        f" (95% interval {_number(point.low)} to {_number(point.high)})"
    tip = f"{point.label}: {_number(point.value)}{band}"
    return (f'<circle cx="{x:.1f}" cy="{frame.y(point.value):.1f}" r="3" fill="{ACCENT}">'
            f"<title>{escape(tip)}</title></circle>")


def line_chart(points: Sequence[BandPoint], *, chart_id: str, title: str, desc: str,
               y_range: tuple[float, float] | None = None, width: int = WIDTH, height: int = HEIGHT
               ) -> Markup:
    """A line through the values over a band from low to high; undefined values leave gaps.

    The y range defaults to the data's, widened to include 0 and 1 (agreement measures live there)."""
    values = [v for p in points for v in (p.value, p.low, p.high) if v is not None]
    low, high = y_range or (min([0.0, *values]), max([1.0, *values]))
    frame = Frame(width, height, low, high)
    xs = [frame.x(i, len(points)) for i in range(len(points))]
    parts = _open(chart_id, title, desc, frame)
    parts += _axes(frame, [p.label for p in points], xs, [low + (high - low) * i / 4 for i in range(5)])
    for run in _runs([p.low is not None and p.high is not None for p in points]):
        edge = [(i, points[i].high) for i in run] + [(i, points[i].low) for i in reversed(run)]
        outline = " ".join(f"{xs[i]:.1f},{frame.y(v or 0.0):.1f}" for i, v in edge)
        parts.append(f'<polygon points="{outline}" fill="{BAND}" fill-opacity="0.6" stroke="none"/>')
    for run in _runs([p.value is not None for p in points]):
        line = " ".join(f"{xs[i]:.1f},{frame.y(points[i].value or 0.0):.1f}" for i in run)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    parts += [_point(frame, x, point) for x, point in zip(xs, points, strict=True) if point.value is not None]
    return Markup("".join([*parts, "</svg>"]))


def bar_chart(bars: Sequence[tuple[str, int]], *, chart_id: str, title: str, desc: str, width: int = WIDTH,
              height: int = HEIGHT) -> Markup:
    """One bar per (label, count), from zero."""
    top = max([1, *(count for _, count in bars)])
    frame = Frame(width, height, 0.0, float(top))
    slot = (width - LEFT - RIGHT) / max(len(bars), 1)
    xs = [LEFT + (i + 0.5) * slot for i in range(len(bars))]
    parts = _open(chart_id, title, desc, frame)
    parts += _axes(frame, [label for label, _ in bars], xs, [0.0, top / 2, float(top)])
    for x, (label, count) in zip(xs, bars, strict=True):
        y = frame.y(count)
        parts.append(f'<rect x="{x - slot * 0.4:.1f}" y="{y:.1f}" width="{max(slot * 0.8, 1):.1f}" '
                     f'height="{frame.y(0) - y:.1f}" fill="{ACCENT}">'
                     f"<title>{escape(label)}: {count}</title></rect>")
    return Markup("".join([*parts, "</svg>"]))
