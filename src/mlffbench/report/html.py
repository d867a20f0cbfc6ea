"""A self-contained HTML page: inline CSS, figures as base64 PNG, tables sortable by a few lines of inline JS,
no external URL of any kind. On load the page checks that every figure decoded and writes the count into
``<body data-figures-rendered="n/m">`` (console.error if one did not), which the browser test reads."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1200px;color:#222;
padding:0 1em;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
th.asc::after{content:' \\25B2'}th.desc::after{content:' \\25BC'}
td.t,th.t{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.status{font-weight:bold;padding:1px 6px;border-radius:3px}
.supported{background:#d9f2d9}.contradicted{background:#f7d4d4}.not-enough-data{background:#fcebc4}
.not-tested{background:#e6e6e6}
.note{font-size:.85em;color:#555}.meta td{text-align:left}
nav a{margin-right:.8em}
.filter{margin:.6em 0;font-size:.9em}
"""

JS = """
function sortTable(th){
  const table=th.closest('table'), body=table.tBodies[0], idx=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));
  th.classList.add(asc?'asc':'desc');
  const key=td=>{const v=td.dataset.v; return v===undefined||v===''?td.textContent:parseFloat(v);};
  const rows=[...body.rows].sort((a,b)=>{
    const x=key(a.cells[idx]), y=key(b.cells[idx]);
    const c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
    return asc?c:-c;});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
function filterElement(el){
  document.querySelectorAll('tr[data-elements]').forEach(tr=>{
    tr.style.display=(!el||tr.dataset.elements.split(' ').includes(el))?'':'none';});
  document.body.dataset.elementFilter=el;
}
const ef=document.getElementById('element-filter');
if(ef){ef.addEventListener('change',()=>filterElement(ef.value));}
window.addEventListener('load',()=>{
  const imgs=[...document.images], ok=imgs.filter(i=>i.complete&&i.naturalWidth>0);
  document.body.dataset.figuresRendered=ok.length+'/'+imgs.length;
  imgs.filter(i=>!ok.includes(i)).forEach(i=>console.error('figure not rendered: '+i.alt));
});
"""


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def cell(value, fmt: str = "{:.3g}") -> str:
    """A <td>; numbers carry data-v for sorting and are right-aligned, text is left-aligned."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return f'<td class="t">{esc("-" if value is None else value)}</td>'
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return '<td data-v="">-</td>'
        text = str(value) if isinstance(value, int) else fmt.format(value)
        return f'<td data-v="{value!r}">{esc(text)}</td>'
    return f'<td class="t">{esc(value)}</td>'


def table(header: list[str], rows: list[list], fmt: str = "{:.3g}", caption: str = "",
          elements: list | None = None) -> str:
    """A sortable table; with ``elements`` (one list of symbols per row) the page's element filter shows only the
    rows whose data set holds the chosen element."""
    if not rows:
        return '<p class="note">(no rows)</p>'
    first = rows[0]
    heads = "".join(f'<th class="{"t" if isinstance(v, str) or v is None else ""}">{esc(h)}</th>'
                    for h, v in zip(header, first))
    attrs = [f' data-elements="{esc(" ".join(e))}"' for e in elements] if elements is not None else [""] * len(rows)
    body = "\n".join(f"<tr{a}>" + "".join(cell(v, fmt) for v in row) + "</tr>" for a, row in zip(attrs, rows))
    cap = f"<caption class=\"note\">{esc(caption)}</caption>" if caption else ""
    return f'<table class="sortable">{cap}<thead><tr>{heads}</tr></thead><tbody>\n{body}\n</tbody></table>'


def element_filter(elements: list[str]) -> str:
    """The page's element filter (ML-PEG's users asked for it): a select that hides table rows of other elements."""
    options = "".join(f'<option value="{esc(e)}">{esc(e)}</option>' for e in elements)
    return (f'<p class="filter"><label>Show rows with element <select id="element-filter"><option value="">all'
            f"</option>{options}</select></label> (tables of every section)</p>")


def figure(b64_png: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64_png}">{cap}</figure>'


@dataclass
class Page:
    title: str
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (id, heading, html)

    def add(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def render(self, intro: str = "") -> str:
        nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in self.sections)
        body = "\n".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>\n{b}\n</section>' for a, h, b in self.sections)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head>\n<body>\n"
                f"<h1>{esc(self.title)}</h1>\n{intro}\n<nav>{nav}</nav>\n{body}\n<script>{JS}</script>\n"
                f"</body></html>\n")
