"""The report's prosody section: how each speaker's pitch, speaking rate and loudness are spread
over their kept segments, as box plots (5th, 25th, 50th, 75th, 95th percentile) on one shared axis
per measure, drawn in inline SVG (no scripts, no files)."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any, Optional

import numpy as np

from ..dataset.rows import speaker_of

#: (column, label, unit)
MEASURES = (("f0_median_hz", "pitch (F0 median)", "Hz"), ("syllables_per_second", "speaking rate", "syllables/s"),
            ("loudness_lufs", "loudness", "LUFS"))
COLUMNS = tuple(m[0] for m in MEASURES)
PLOT_W, PLOT_H = 220, 18


def _quantiles(values: list[float]) -> Optional[list[float]]:
    return [round(float(q), 2) for q in np.percentile(values, [5, 25, 50, 75, 95])] if values else None


def prosody_by_speaker(segments: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Per speaker and measure: segment count and the 5/25/50/75/95th percentiles; the axis range of
    each measure over all speakers. None when nothing was measured (prosody.kind=none)."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in segments:
        for col in COLUMNS:
            if r.get(col) is not None:
                values[speaker_of(r)][col].append(float(r[col]))
    if not values:
        return None
    speakers = [{"speaker_id": spk, **{col: {"n": len(v[col]), "quantiles": _quantiles(v[col])} for col in COLUMNS}}
                for spk, v in sorted(values.items())]
    ranges = {}
    for col in COLUMNS:
        every = [x for v in values.values() for x in v[col]]
        ranges[col] = [round(min(every), 2), round(max(every), 2)] if every else None
    return {"speakers": speakers, "ranges": ranges}


def _box(q: Optional[list[float]], lo: float, hi: float, unit: str) -> str:
    if not q:
        return "—"
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 4 + (PLOT_W - 8) * (v - lo) / span

    p5, p25, p50, p75, p95 = q
    title = html.escape(f"5%: {p5} · 25%: {p25} · median: {p50} · 75%: {p75} · 95%: {p95} {unit}", quote=True)
    mid = PLOT_H / 2
    return (f'<svg width="{PLOT_W}" height="{PLOT_H}" role="img"><title>{title}</title>'
            f'<line x1="{x(p5):.1f}" x2="{x(p95):.1f}" y1="{mid}" y2="{mid}" stroke="#555"/>'
            f'<rect x="{x(p25):.1f}" y="3" width="{max(1.0, x(p75) - x(p25)):.1f}" height="{PLOT_H - 6}" '
            f'fill="#a0cbe8" stroke="#4e79a7"/>'
            f'<line x1="{x(p50):.1f}" x2="{x(p50):.1f}" y1="2" y2="{PLOT_H - 2}" stroke="#e15759" stroke-width="2"/>'
            f'</svg> <small>{p50:g}</small>')


def prosody_section(report: dict) -> str:
    p = report.get("prosody")
    if not p:
        return "<h2>Prosody per speaker</h2><p>Nothing measured (prosody.kind=none or nothing kept).</p>"
    head = "".join(f"<th>{html.escape(label)} ({html.escape(unit)})<br><small>{html.escape(_axis(p['ranges'][col]))}"
                   f"</small></th>" for col, label, unit in MEASURES)
    rows = []
    for s in p["speakers"]:
        cells = "".join(f"<td>{_box(s[col]['quantiles'], *(p['ranges'][col] or (0, 1)), unit)}</td>"
                        for col, _, unit in MEASURES)
        n = max(s[col]["n"] for col in COLUMNS)
        rows.append(f"<tr><td class='mono'>{html.escape(s['speaker_id'])}</td><td class='num'>{n}</td>{cells}</tr>")
    return ("<h2>Prosody per speaker</h2><p>Each speaker's segments: the box spans the 25th to 75th percentile, the "
            "whiskers the 5th to 95th, the red line the median (its value beside it); one axis per column.</p>\n"
            f"<table class='grid'><tr><th>speaker</th><th>segments</th>{head}</tr>\n" + "\n".join(rows) + "\n</table>")


def _axis(r: Optional[list[float]]) -> str:
    return f"axis {r[0]:g} – {r[1]:g}" if r else ""
