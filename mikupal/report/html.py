"""report.html: the retention funnel, time per stage, the emotion distribution, and the clips
with players, as one self-contained page (CSS bars, no scripts, no network)."""

from __future__ import annotations

import html
from pathlib import Path

import pyarrow as pa

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


def render_html(report: dict, segments: pa.Table) -> str:
    funnel = [(f["stage"], f["seconds"], f"{f['count']} items, {f['seconds']:.1f} s") for f in report["funnel"]]
    stages = [(k, v, f"{v:.1f} s") for k, v in report["stages"].items()]
    emo = [(k, float(v), str(v)) for k, v in report.get("emotion_distribution", {}).items()]
    reasons = [(f"{r['stage']}: {r['reason']}", float(r["count"]), str(r["count"])) for r in report.get("reject_reasons", [])]
    rows = []
    for r in segments.slice(0, MAX_ROWS).to_pylist():
        audio = html.escape(r.get("audio_path") or "")
        clip = html.escape(r.get("clip_path") or "")
        rows.append(
            "<tr>"
            f"<td class='mono'>{html.escape(r['segment_id'])}</td>"
            f"<td>{r['start']:.2f}–{r['end']:.2f}</td>"
            f"<td>{html.escape(r['text'])}</td>"
            f"<td>{html.escape(str(r.get('primary_emotion') or '—'))}</td>"
            f"<td>{(r.get('asd_score') or 0):.2f}</td>"
            f"<td>{'<audio controls preload=none src=' + chr(34) + audio + chr(34) + '></audio>' if audio else ''}</td>"
            f"<td>{'<a href=' + chr(34) + clip + chr(34) + '>clip</a>' if clip else ''}</td>"
            "</tr>"
        )
    more = f"<p>Showing {MAX_ROWS} of {segments.num_rows} segments.</p>" if segments.num_rows > MAX_ROWS else ""
    head = (
        f"<p>{report['videos']} videos, {report['segments']} segments kept, {report['rejects']} rejects. "
        f"Input {report['input_seconds']:.1f} s, kept {report['kept_seconds']:.1f} s "
        f"(retention {100 * report['retention']:.1f}%). Wall {report['wall_seconds']:.1f} s, "
        f"speed ratio {report['speed_ratio']:.2f}x. Cost ${report['cost_usd']:.4f}.</p>"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mikupal run report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}} td,th{{padding:3px 8px;text-align:left;vertical-align:top}}
table.bars{{width:100%}} table.bars th{{width:18em;font-weight:normal}}
.bar{{background:#4e79a7;height:1em;min-width:1px}} .num{{white-space:nowrap;width:14em}}
.clips tr:nth-child(even){{background:#f4f4f4}} .mono{{font-family:monospace;font-size:85%}}
</style></head><body>
<h1>mikupal run report</h1>
{head}
<h2>Retention funnel (seconds after each stage)</h2>
{_bars(funnel)}
<h2>Time per stage (worker seconds)</h2>
{_bars(stages)}
<h2>Emotion distribution (primary)</h2>
{_bars(emo) if emo else '<p>No labels (labeler=none or nothing kept).</p>'}
<h2>Reject reasons</h2>
{_bars(reasons) if reasons else '<p>None.</p>'}
{accounting_html(report)}
{skipped_files_html(report)}
<h2>Segments</h2>
{more}
<table class="clips"><tr><th>segment</th><th>time (s)</th><th>text</th><th>emotion</th><th>ASD</th><th>audio</th><th>clip</th></tr>
{''.join(rows)}
</table>
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
    path = Path(root) / "report.html"
    tmp = path.with_name("report.html.tmp")
    tmp.write_text(render_html(report, segments), encoding="utf-8")
    tmp.replace(path)
    return path
