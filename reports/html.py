"""One self-contained HTML page: inline CSS, images as data URIs, no scripts, fonts or links
to fetch, every user-provided string escaped. Readable on a laptop and on a phone (fluid
width, tables scroll sideways inside their box, images scale down).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from dataclasses import dataclass, field

import pandas as pd

from reports.frame import APART_MARK, apart_note

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:12px 16px;color:#1b1b1b;background:#fff;line-height:1.45}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.6em}h3{font-size:1.05em}
.box{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em;white-space:nowrap}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;image-rendering:auto}
figcaption{font-size:.85em;color:#555}.pixel img{image-rendering:pixelated}
.note{font-size:.85em;color:#555}.grid{display:flex;flex-wrap:wrap;gap:12px}
.grid figure{flex:1 1 260px;max-width:420px}
"""


@dataclass
class Figure:
    """A PNG with a caption; ``pixel`` keeps sample grids sharp when scaled up; ``name``
    (when set) is the file stem under which the figure is also written as a PNG."""

    png: bytes
    caption: str
    pixel: bool = False
    name: str = ""


@dataclass
class Section:
    """A heading, optional paragraphs, tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    gallery: bool = False  # figures side by side (sample grids, strips)


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(title: str, sections: list[Section], subtitle: str = "") -> str:
    """The page as one string."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if subtitle:
        out.append(f'<p class="note">{e(subtitle)}</p>')
    out.append(
        f'<p class="note">generated {e(dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))}</p>'
    )
    for s in sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        out.extend(f"<p>{e(p)}</p>" for p in s.paragraphs)
        for caption, table in s.tables:
            if caption:
                out.append(f"<h3>{e(caption)}</h3>")
            apart = table.attrs.get("apart") or {}
            shown = table.rename(index={v: f"{v} {APART_MARK}" for v in apart}) if apart else table
            body = shown.to_html(escape=True, na_rep="–", index=table.index.name is not None)
            out.append('<div class="box">' + body + "</div>")
            if apart:
                out.append(f'<p class="note">{e(apart_note(table))}</p>')
        if s.figures:
            out.append('<div class="grid">' if s.gallery else "<div>")
            for f in s.figures:
                cls = ' class="pixel"' if f.pixel else ""
                out.append(
                    f'<figure{cls}><img src="{data_uri(f.png)}" alt="{e(f.caption)}">'
                    f"<figcaption>{e(f.caption)}</figcaption></figure>"
                )
            out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)
