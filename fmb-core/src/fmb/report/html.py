"""HTML building blocks of the report: escaped text, tables, embedded PNGs, the page shell."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px 0;font-size:24px}
header p{margin:0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde;padding:8px 32px;z-index:2;font-size:14px}
nav a{margin-right:16px;color:#1f3a5f;text-decoration:none}
main{padding:8px 32px 40px 32px;max-width:1500px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px 20px 18px;margin:18px 0}
h2{font-size:19px;margin:6px 0 10px;color:#1f3a5f}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:700;color:#0b5e2b}
code{font-size:12px;background:#f0f2f5;padding:1px 4px;border-radius:3px;word-break:break-all}
img.fig{max-width:100%;height:auto;display:block;margin:8px 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 12px;margin:8px 0;font-size:14px}
.muted{color:#6b7280;font-size:13px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:10px}
.card{border:1px solid #e2e5ea;border-radius:6px;padding:8px;display:flex;flex-wrap:wrap;gap:4px 8px;
  align-items:center;background:#fcfcfd}
.card img{display:block}
.card .cut{max-width:100%;height:auto;flex:none}
.card .spec{width:460px;max-width:100%;height:auto}
.card .cap{font-size:13px;flex-basis:100%}
.cls-anom{color:#b91c1c;font-weight:600}
.cls-unl{color:#6b7280;font-style:italic}
details.system{border:1px solid #e2e5ea;border-radius:6px;margin:6px 0;padding:4px 12px;background:#fcfcfd}
details.system[open]{background:#fff}
details>summary{cursor:pointer;padding:4px 0;font-size:14px}
.meta td:first-child{font-weight:600;white-space:nowrap}
"""


@dataclass
class Section:
    """One block of the page, with an anchor for the navigation bar."""

    anchor: str
    title: str
    body: str


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.3g}"
    return str(v)


def table(
    header: list[str],
    rows: list[list[Any]],
    numeric: set[int] | None = None,
    best: dict[int, set[int]] | None = None,
    cls: str = "",
) -> str:
    """An HTML table; ``numeric`` column indices are right-aligned; ``best`` maps a column to rows to bold."""
    numeric, best = numeric or set(), best or {}
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = []
    for i, r in enumerate(rows):
        cells = []
        for j, v in enumerate(r):
            klass = " ".join(k for k, on in (("num", j in numeric), ("best", i in best.get(j, ()))) if on)
            cells.append(
                f'<td class="{klass}">{v if isinstance(v, Raw) else esc(fmt(v))}</td>'
                if klass
                else f"<td>{v if isinstance(v, Raw) else esc(fmt(v))}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}">{thead}<tbody>{"".join(body)}</tbody></table>'


class Raw(str):
    """Already-escaped HTML, put into a table cell as is."""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def img(path: Path, alt: str, cls: str = "fig") -> str:
    """An embedded PNG (the page stays one self-contained file); the file name is kept in the title."""
    return f'<img class="{cls}" src="{data_uri(path)}" alt="{esc(alt)}" title="{esc(Path(path).name)}">'


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>"
        f"<main>{body}</main></body></html>\n"
    )
