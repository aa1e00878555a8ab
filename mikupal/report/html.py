"""report.html: the retention funnel, time per stage, per-source and reject tables, speakers, the
DNSMOS histogram, prosody per speaker, the mixed-emotion heatmap, and the clips with players and
their captions, as one self-contained page
(CSS bars, no scripts, no network). Every media path is relative to report.html, which sits at the
output dir's root, so the page works wherever the folder is copied. One function per section."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import pyarrow as pa

from .. import atomic
from ..dataset.rows import speaker_name
from ..layout import OutputPaths
from .prosody import prosody_section

MAX_ROWS = 500


def _bars(rows: list[tuple[str, float, str]]) -> str:
    top = max((v for _, v, _ in rows), default=0.0) or 1.0
    out = ['<table class="bars">']
    for label, value, text in rows:
        width = 100.0 * value / top
        out.append(
            f"<tr><th>{html.escape(label)}</th><td><div class='bar' style='width:{width:.1f}%'></div></td>"
            f"<td class='num'>{html.escape(text)}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _audio(src: str) -> str:
    """A player whose src is relative to report.html (which sits at the output dir's root)."""
    return f'<audio controls preload="metadata" src="{html.escape(src, quote=True)}"></audio>' if src else ""


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>' if href else ""


def _table(header: list[str], rows: list[str], cls: str = "grid") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f'<table class="{cls}"><tr>{head}</tr>\n' + "\n".join(rows) + "\n</table>"


def _score(v) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else "—"


def per_source_section(report: dict) -> str:
    rows = []
    for s in report.get("per_source", [])[:MAX_ROWS]:
        reasons = ", ".join(f"{html.escape(k)} ×{n}" for k, n in s["rejects"].items()) or "—"
        rows.append(f"<tr><td title='{html.escape(s['source'], quote=True)}'>{html.escape(s['name'])}</td>"
                    f"<td class='num'>{s['seconds_in']:.1f}</td><td class='num'>{s['seconds_kept']:.1f}</td>"
                    f"<td class='num'>{s['kept']}</td><td>{reasons}</td></tr>")
    if not rows:
        return "<h2>Per source</h2><p>No inputs.</p>"
    return "<h2>Per source</h2>\n" + _table(["file", "seconds in", "seconds kept", "segments kept", "rejects by reason"], rows)


def _span_text(e: dict) -> str:
    if e.get("start") is None or e.get("end") is None:  # a whole video (probe, input ...)
        return f"{e['source']}: {e['message']}"
    return f"{e['source']} {e['start']:.2f}–{e['end']:.2f} s: {e['message']}"


def rejects_section(report: dict) -> str:
    rows = []
    for g in report.get("reject_examples", []):
        spans = "<br>".join(html.escape(_span_text(e)) for e in g["examples"])
        meaning = html.escape(g.get("meaning") or "", quote=True)
        rows.append(f"<tr><td>{html.escape(g['stage'])}</td><td title=\"{meaning}\">{html.escape(g['reason'])}</td>"
                    f"<td class='num'>{g['count']}</td><td class='num'>{g['seconds']:.1f}</td><td>{spans}</td></tr>")
    if not rows:
        return "<h2>Rejects</h2><p>None.</p>"
    return "<h2>Rejects</h2>\n" + _table(["stage", "reason", "count", "seconds", "example spans"], rows)


def _who(name: str, global_id, speaker_id: str) -> str:
    """'interview S2' with the global id beside it, the raw id on hover."""
    gid = f" <span class='gid'>{html.escape(global_id)}</span>" if global_id else ""
    return f"<span title='{html.escape(speaker_id, quote=True)}'>{html.escape(name)}</span>{gid}"


def speakers_section(report: dict) -> str:
    rows = []
    for s in report.get("speakers", [])[:MAX_ROWS]:
        face = (f'<img class="face" alt="face of {html.escape(s.get("name") or s["speaker_id"], quote=True)}" '
                f'src="{html.escape(s["face_crop_path"], quote=True)}">' if s.get("face_crop_path") else "")
        rows.append(f"<tr><td>{_who(s.get('name') or s['speaker_id'], s.get('global_speaker_id'), s['speaker_id'])}</td>"
                    f"<td class='num'>{s['segments']}</td><td class='num'>{s['seconds']:.1f}</td><td>{face}</td>"
                    f"<td>{_link(s.get('sample_audio') or '', 'sample')}</td></tr>")
    if not rows:
        return "<h2>Speakers</h2><p>None.</p>"
    return ("<h2>Speakers</h2>\n<p>Each person of each video, named by the source file and their number in it; the "
            "global id (G&lt;k&gt;) is the same voice across videos.</p>\n"
            + _table(["speaker (global id)", "segments", "seconds", "face", "audio"], rows))


def tts_section(report: dict) -> str:
    """The card a TTS builder reads first: hours, people, minutes per person, segment durations."""
    t = report.get("tts")
    if not t or not t["segments"]:
        return "<h2>For TTS</h2><p>Nothing kept yet.</p>"
    people = [(p["name"], p["minutes"], f"{p['minutes']:.1f} min") for p in t["minutes_per_person"]]
    if t.get("others"):
        o = t["others"]
        people.append((f"{o['people']} others", o["minutes"], f"{o['minutes']:.1f} min"))
    top = max(b["count"] for b in t["duration_bins"]) or 1
    cols = "".join(
        f"<div class='col' title='{b['low']:g}–{b['high']:g} s: {b['count']}'><span>{b['count'] or ''}</span>"
        f"<div class='colbar' style='height:{100.0 * b['count'] / top:.1f}%'></div><small>{b['low']:g}</small></div>"
        for b in t["duration_bins"])
    return (f"<h2>For TTS</h2>\n<div class='card'><p><b>{_duration(3600 * t['kept_hours'])}</b> kept "
            f"({t['kept_hours']:.3f} h) in <b>{t['segments']}</b> segments from <b>{t['people']}</b> "
            f"{'person' if t['people'] == 1 else 'people'}; median segment {t['median_seconds']:.1f} s.</p>\n"
            f"<h3>Minutes per person</h3>\n{_bars(people)}\n<h3>Segment durations (seconds)</h3>\n"
            f"<div class='hist'>{cols}</div></div>")


def _threshold_name(t) -> str:
    return "all" if t is None else f"OVRL ≥ {t:.1f}"


def dnsmos_section(report: dict) -> str:
    d = report.get("dnsmos")
    if not d:
        return "<h2>Speech quality (DNSMOS)</h2><p>No scores (quality.kind=none or nothing kept).</p>"
    top = max(b["count"] for b in d["bins"]) or 1
    cols = "".join(
        f"<div class='col' title='{b['low']:.2f}–{b['high']:.2f}: {b['count']}'><span>{b['count'] or ''}</span>"
        f"<div class='colbar' style='height:{100.0 * b['count'] / top:.1f}%'></div><small>{b['low']:.2f}</small></div>"
        for b in d["bins"])
    means = ", ".join(f"{k.replace('dnsmos_', '').upper()} {_score(v)}" for k, v in d["means"].items())
    rows = [f"<tr><td>{_threshold_name(t['min_dnsmos'])}</td><td>{t['segments']}</td><td>{t['seconds'] / 60:.1f}</td></tr>"
            for t in d.get("thresholds") or []]
    table = ("<p>What an export threshold would keep (<code>mikupal export ... min_dnsmos=3.0</code>):</p>"
             + _table(["threshold", "segments", "minutes"], rows)) if rows else ""
    return (f"<h2>Speech quality (DNSMOS)</h2><p>{d['scored']} segments scored; means: {html.escape(means)}. "
            f"Histogram of OVRL (bins of 0.25):</p>\n<div class='hist'>{cols}</div>{table}")


def emotion_heatmap_section(report: dict) -> str:
    h = report.get("emotion_heatmap")
    if not h:
        return "<h2>Mixed emotions</h2><p>No labels (labeler=none or nothing kept).</p>"
    top = max((v for r in h["rows"] for v in r["means"]), default=0.0) or 1.0
    head = "".join(f"<th class='vert'><span>{html.escape(c)}</span></th>" for c in h["categories"])
    rows = []
    for r in h["rows"]:
        cells = "".join(
            f"<td class='cell' style='background:rgba(78,121,167,{v / top:.3f});color:{'#fff' if v / top > 0.55 else '#222'}'"
            f" title='{html.escape(r['label'], quote=True)} / {html.escape(c, quote=True)}: {v:.3f}'>{v:.2f}</td>"
            for c, v in zip(h["categories"], r["means"]))
        rows.append(f"<tr><th>{html.escape(r['label'])} <small>({r['count']})</small></th>{cells}</tr>")
    return ("<h2>Mixed emotions</h2><p>Mean intensity of each category, over all segments and per primary emotion "
            "(row: primary emotion, with its segment count).</p>\n"
            f"<table class='heat'><tr><th></th>{head}</tr>\n" + "\n".join(rows) + "\n</table>")


def segments_section(segments: pa.Table, people: Optional[dict[str, dict]] = None) -> str:
    """The kept segments with players, in a table that wraps to the page's width (fixed layout)."""
    people = people or {}
    rows = []
    for r in segments.slice(0, MAX_ROWS).to_pylist():
        sid = r.get("speaker_id") or r["video_id"]
        who = people.get(sid, {})
        name = who.get("name") or speaker_name(r.get("source") or "", sid)
        rows.append(
            "<tr>"
            f"<td class='mono id'>{html.escape(r['segment_id'])}</td>"
            f"<td>{_who(name, who.get('global_speaker_id'), sid)}</td>"
            f"<td class='num'>{r['start']:.2f}–{r['end']:.2f}</td>"
            f"<td>{html.escape(r['text'])}</td>"
            f"<td>{html.escape(str(r.get('primary_emotion') or '—'))}</td>"
            f"<td>{(r.get('asd_score') or 0):.2f}</td>"
            f"<td>{_score(r.get('dnsmos_ovrl'))}</td>"
            f"<td class='caption'>{_caption(r)}</td>"
            f"<td>{_audio(r.get('audio_path') or '')}</td>"
            f"<td>{_link(r.get('clip_path') or '', 'clip')}</td>"
            "</tr>"
        )
    more = f"<p>Showing {MAX_ROWS} of {segments.num_rows} segments.</p>" if segments.num_rows > MAX_ROWS else ""
    widths = (8, 9, 7, 22, 9, 4, 5, 18, 15, 3)  # percent of the page: the text wraps, nothing runs off the side
    cols = "".join(f"<col style='width:{w}%'>" for w in widths)
    return (f"<h2>Segments</h2>\n{more}\n<table class=\"clips\"><colgroup>{cols}</colgroup><tr><th>segment</th>"
            "<th>speaker</th><th>time (s)</th><th>text</th><th>emotion</th><th>ASD</th><th>OVRL</th><th>caption</th><th>audio</th>"
            "<th>clip</th></tr>\n" + "".join(rows) + "\n</table>")


def labeled(report: dict) -> bool:
    """Labeling was on for this output (its config says so, or some segment carries a label)."""
    kind = ((report.get("config") or {}).get("labeler") or {}).get("kind")
    return bool(report.get("emotion_distribution") or report.get("input_tokens") or (kind and kind != "none"))


def _caption(r: dict) -> str:
    """How the line is said, and who wrote it (the labeler, or the measured bins)."""
    if not r.get("caption"):
        return "—"
    return f"{html.escape(r['caption'])} <small class='src'>({html.escape(r.get('caption_source') or '?')})</small>"


def render_html(report: dict, segments: pa.Table) -> str:
    with_labels = labeled(report)
    funnel = [(f["stage"], f["seconds"], f"{f['count']} items, {f['seconds']:.1f} s") for f in report["funnel"]
              if with_labels or f["stage"] != "label"]
    stages = [(k, v, f"{v:.1f} s") for k, v in report["stages"].items()]
    emo = [(k, float(v), str(v)) for k, v in report.get("emotion_distribution", {}).items()]
    reasons = [(f"{r['stage']}: {r['reason']}", float(r["count"]), str(r["count"])) for r in report.get("reject_reasons", [])]
    head = (
        f"<p>{report['videos']} videos, {report['segments']} segments kept, {report['rejects']} rejects. "
        f"Input {report['input_seconds']:.1f} s, kept {report['kept_seconds']:.1f} s "
        f"(retention {100 * report['retention']:.1f}%). Wall {report['wall_seconds']:.1f} s, "
        f"speed ratio {report['speed_ratio']:.2f}x." + (f" Cost {_usd(report['cost_usd'])}." if with_labels else "")
        + "</p>"
    )
    people = {s["speaker_id"]: s for s in report.get("speakers", [])}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mikupal run report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;box-sizing:border-box}}
table.clips{{table-layout:fixed;width:100%}} table.clips td{{overflow-wrap:anywhere}} table.clips td.id{{font-size:70%}}
table.clips audio{{width:100%;min-width:0;height:2em}} .gid{{font-family:monospace;font-size:80%;color:#555}}
.card{{border:1px solid #ccc;border-radius:6px;padding:0.5em 1em;max-width:900px}}
table{{border-collapse:collapse}} td,th{{padding:3px 8px;text-align:left;vertical-align:top}}
table.bars{{width:100%}} table.bars th{{width:18em;font-weight:normal}}
.bar{{background:#4e79a7;height:1em;min-width:1px}} .num{{white-space:nowrap;text-align:right}}
.clips tr:nth-child(even),.grid tr:nth-child(even){{background:#f4f4f4}} .mono{{font-family:monospace;font-size:85%}}
.grid th{{border-bottom:1px solid #ccc}} img.face{{height:48px}}
td.caption{{max-width:26em;font-size:90%}} small.src{{color:#777}}
.hist{{display:flex;align-items:flex-end;height:180px;gap:3px;border-bottom:1px solid #999;max-width:800px}}
.hist .col{{flex:1;display:flex;flex-direction:column;justify-content:flex-end;align-items:center;height:100%;font-size:75%}}
.hist .colbar{{background:#4e79a7;width:100%;min-height:1px}}
table.heat{{font-size:75%}} table.heat td.cell{{text-align:center;min-width:2.6em;border:1px solid #fff}}
table.heat th.vert{{vertical-align:bottom;padding:2px}} table.heat th.vert span{{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}}
</style></head><body>
<h1>mikupal run report</h1>
{head}
{tts_section(report)}
<h2>Retention funnel (seconds after each stage)</h2>
{_bars(funnel)}
<h2>Time per stage (worker seconds)</h2>
{_bars(stages)}
{per_source_section(report)}
<h2>Reject reasons</h2>
{_bars(reasons) if reasons else '<p>None.</p>'}
{accounting_html(report)}
{rejects_section(report)}
{skipped_files_html(report)}
{speakers_section(report)}
{dnsmos_section(report)}
{prosody_section(report)}
<h2>Emotion distribution (primary)</h2>
{_bars(emo) if emo else '<p>No labels (labeler=none or nothing kept).</p>'}
{emotion_heatmap_section(report)}
{segments_section(segments, people)}
</body></html>
"""


def accounting_html(report: dict) -> str:
    """Where the VAD speech seconds went: kept, or a reject span by reason (the funnel reconciled)."""
    acc = report.get("accounting")
    if not acc:
        return ""
    rows = [("kept", acc["kept_seconds"], f"{acc['kept_seconds']:.1f} s")]
    rows += [(f"rejected: {k}", v, f"{v:.1f} s") for k, v in acc.get("rejected_seconds_by_reason", {}).items()]
    rows.append(("unaccounted", acc["unaccounted_seconds"], f"{acc['unaccounted_seconds']:.1f} s"))
    return (f"<h2>Speech seconds accounted for ({100 * acc['accounted_fraction']:.1f}% of {acc['vad_seconds']:.1f} s "
            f"of VAD speech)</h2>\n{_bars(rows)}")


def skipped_files_html(report: dict) -> str:
    """The files of the input folders that were not media, so none is passed over silently."""
    skipped = report.get("skipped_files") or []
    if not skipped:
        return ""
    items = "".join(f"<li><span class='mono'>{html.escape(s['path'])}</span> ({html.escape(s['reason'])})</li>"
                    for s in skipped[:MAX_ROWS])
    more = f"<p>Showing {MAX_ROWS} of {len(skipped)}.</p>" if len(skipped) > MAX_ROWS else ""
    return f"<h2>Skipped files ({len(skipped)}, not media)</h2>\n{more}<ul>{items}</ul>"


def write_html(root: Path, report: dict, segments: pa.Table) -> Path:
    path = OutputPaths(root).report_html
    atomic.write_text(path, render_html(report, segments))
    return path


def _duration(s: float) -> str:
    """13.7 s, 12.5 min, 3.25 h: in the unit that reads best."""
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.2f} h"


def _usd(value) -> str:
    return "unknown (the labeler model has no price)" if value is None else f"${value:.4f}"
