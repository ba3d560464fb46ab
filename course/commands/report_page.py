"""The dashboard's pages: one self-contained HTML file per assignment, and the course's index.

An assignment's page has its plotly figures drawn by one copy of plotly.js inlined into the
page, so it opens offline; the index page needs no script. Every value reaches the HTML
through the templates' autoescaping (course/commands/templates/report*.html.j2), except the
figures, which plotly serialises as JSON inside its own script.

What the pages show comes from course/commands/report_stats.py: counts, shares, points and
the first visible line of each test cell. No cell source, output or failure message of a
graded notebook is ever handed to them.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from markupsafe import Markup

from ..plugins.feedback import plotly_html
from .report_data import ClassData, Where
from .report_stats import CellRow, Distribution, Health, answer_rows, cell_rows, distribution, health

TEMPLATES = Path(__file__).resolve().parent / "templates"
COLOURS = {Where.VISIBLE: "#1f77b4", Where.HIDDEN: "#d62728", Where.NOT_RUN: "#7f7f7f", Where.OTHER: "#ff7f0e"}
MESSAGE_CHARS = 160


@cache
def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    env.filters["pct"] = lambda share: "—" if share is None else f"{100 * share:.0f} %"
    env.filters["short"] = lambda text: text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"
    return env


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"


def _figure(fig) -> Markup:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50}, font={"size": 13})
    return Markup(plotly_html(fig))


def _count_axis(values: list[float], start: float, size: float) -> dict:
    """Whole-number ticks (plotly would show halves of a submission) for a histogram of ``values``
    in bins of ``size`` from ``start``: a step of 1, 2 or 5 times a power of ten, about five ticks."""
    most = max(Counter(math.floor((v - start) / size) for v in values).values(), default=1)
    step = next(s * 10 ** k for k in range(12) for s in (1, 2, 5) if s * 10 ** k * 6 >= most)
    return {"dtick": step, "tick0": 0}


def score_figure(dist: Distribution):
    """Histograms of autograded points, written-answer points (graded ones) and bonus points."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    panels = [(f"autograded (of {_number(dist.auto_max)})", dist.autograded, dist.auto_max, "#1f77b4")]
    if dist.manual_max:
        panels.append((f"written answers (of {_number(dist.manual_max)}; {len(dist.written)} graded)",
                       dist.written, dist.manual_max, "#2ca02c"))
    if dist.bonus_max:
        panels.append((f"bonus (of {_number(dist.bonus_max)})", dist.bonus, dist.bonus_max, "#9467bd"))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels])
    for i, (name, values, top, colour) in enumerate(panels, start=1):
        size = max(top / 20, 0.5) if top else 1
        fig.add_trace(go.Histogram(x=values, name=name, marker_color=colour, showlegend=False,
                                   xbins={"start": -size / 2, "end": top + size / 2, "size": size},
                                   hovertemplate="%{x} points: %{y} submissions<extra></extra>"), row=1, col=i)
        fig.update_xaxes(title_text="points", range=[-size, top + size], row=1, col=i)
        fig.update_yaxes(title_text="submissions" if i == 1 else None, rangemode="tozero", row=1, col=i,
                         **_count_axis(values, -size / 2, size))
    fig.update_layout(height=330, bargap=0.05)
    return _figure(fig)


def cells_figure(rows: list[CellRow]):
    """The share of submissions failing each cell, split by where it failed."""
    import plotly.graph_objects as go

    rows = list(reversed(rows))  # plotly draws the first category at the bottom
    labels = [f"{r.cell.grade_id}{' (bonus)' if r.cell.kind == 'bonus' else ''}" for r in rows]
    fig = go.Figure()
    for where in Where.ALL:
        shares = [r.where.get(where, 0) / r.submissions if r.submissions else 0 for r in rows]
        fig.add_trace(go.Bar(y=labels, x=shares, orientation="h", name=f"failed: {where}",
                             marker_color=COLOURS[where], customdata=[r.cell.title for r in rows],
                             hovertemplate="%{customdata}<br>%{x:.0%} of submissions<extra>" + where + "</extra>"))
    fig.update_layout(barmode="stack", height=120 + 26 * len(rows), xaxis={"tickformat": ".0%", "range": [0, 1],
                      "title": "share of submissions failing the cell"}, legend={"orientation": "h", "y": 1.02,
                      "yanchor": "bottom", "x": 0, "traceorder": "normal"}, yaxis={"automargin": True})
    return _figure(fig)


def time_figure(hp: Health):
    import plotly.graph_objects as go

    start = math.floor(min(hp.seconds))
    size = max((max(hp.seconds) - start) / 30, 0.5)
    fig = go.Figure(go.Histogram(x=hp.seconds, marker_color="#8c564b", xbins={"start": start, "size": size},
                                 hovertemplate="%{x} s: %{y} submissions<extra></extra>"))
    fig.update_layout(height=280, xaxis={"title": "seconds to grade one submission"},
                      yaxis={"title": "submissions", **_count_axis(hp.seconds, start, size)}, bargap=0.05)
    return _figure(fig)


def assignment_page(data: ClassData, csv_name: str) -> str:
    """The HTML of one assignment's dashboard."""
    from plotly.offline import get_plotlyjs

    rows, dist, hp = cell_rows(data), distribution(data), health(data)
    figures = {}
    if data.submissions:
        figures["scores"] = score_figure(dist)
        if rows:
            figures["cells"] = cells_figure(rows)
    if hp.seconds:
        figures["time"] = time_figure(hp)
    return _environment().get_template("report.html.j2").render(
        assignment=data.assignment, generated=_now(), csv_name=csv_name, rows=rows, answers=answer_rows(data),
        dist=dist, health=hp, figures=figures, where=Where.ALL, colours=COLOURS,
        plotly_js=Markup(get_plotlyjs()) if figures else None, mean=Distribution.mean,
        notebooks=len({c.notebook for c in data.cells}))


def index_page(course: list[ClassData], pages: dict[str, str], hardest_rows: list[CellRow]) -> str:
    """The HTML of the page across assignments: each assignment's numbers and the hardest exercises."""
    summaries = [(data.assignment, distribution(data)) for data in course]
    return _environment().get_template("report_index.html.j2").render(
        generated=_now(), summaries=summaries, pages=pages, hardest=hardest_rows, mean=Distribution.mean)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
