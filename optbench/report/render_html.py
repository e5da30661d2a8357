"""``index.html``: one static page, no script, figures referenced beside it.

The page links each figure's PNG (shown) and SVG (on click) and each figure's and table's CSV
by relative paths inside the report directory, so the directory can be moved or archived as a
whole and opened from disk (``file://``) or any static web server. Figures are not embedded as
data URIs: a full report holds dozens of them and the page stays small and quick to open.
"""

import html
import re

from .document import Figure, Table, Text, table_cells

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
p.subtitle { color: #555; margin-top: 0; }
nav ol { columns: 2; font-size: 0.9rem; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { font-size: 0.88rem; color: #333; }
table { border-collapse: collapse; font-size: 0.82rem; margin: 0.4rem 0 1.2rem; }
th, td { border: 1px solid #ccc; padding: 0.15rem 0.45rem; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def render(document):
    """The HTML text of ``document`` (a :class:`.document.Document`)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # an empty icon: the browser asks for no favicon.ico that does not exist
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(document.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(document.title)}</h1>",
    ]
    if document.subtitle:
        parts.append(f'<p class="subtitle">{_inline(document.subtitle)}</p>')
    parts.append(_contents(document.sections))
    for section in document.sections:
        parts.append(_section(section))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _contents(sections):
    items = "".join(
        f'<li><a href="#{section.anchor}">{html.escape(section.title)}</a></li>'
        for section in sections
    )
    return f"<nav><ol>{items}</ol></nav>"


def _section(section):
    parts = [f'<section id="{section.anchor}">', f"<h2>{html.escape(section.title)}</h2>"]
    for block in section.blocks:
        if isinstance(block, Text):
            parts.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Figure):
            parts.append(_figure(block))
        elif isinstance(block, Table):
            parts.append(_table(block))
        else:
            raise TypeError(f"block must be Text, Figure or Table, got {type(block).__name__}")
    parts.append("</section>")
    return "\n".join(parts)


def _figure(figure):
    links = [f'<a href="{_url(figure.svg)}">SVG</a>']
    links += [f'<a href="{_url(path)}">{html.escape(_stem(path))}.csv</a>' for path in figure.data]
    return (
        f'<figure id="fig-{html.escape(figure.name)}">'
        f'<a href="{_url(figure.svg)}"><img src="{_url(figure.png)}" '
        f'alt="{html.escape(figure.caption, quote=True)}"></a>'
        f"<figcaption>{_inline(figure.caption)} ({' · '.join(links)})</figcaption>"
        "</figure>"
    )


def _table(table):
    header, rows = table_cells(table.frame)
    numeric = [table.frame[column].dtype.kind in "iuf" for column in table.frame.columns]
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(cell)}</td>'
            if is_num
            else f"<td>{html.escape(cell)}</td>"
            for cell, is_num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    caption = f'{_inline(table.caption)} (<a href="{_url(table.data)}">{_stem(table.data)}.csv</a>)'
    return (
        f'<div class="scroll" id="table-{html.escape(table.name)}">'
        f'<p class="caption">{caption}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _inline(text):
    """Escape ``text``; spans between backticks become ``<code>``."""
    pieces = re.split(r"`([^`]*)`", text)
    return "".join(
        f"<code>{html.escape(piece)}</code>" if i % 2 else html.escape(piece)
        for i, piece in enumerate(pieces)
    )


def _url(path):
    return html.escape(path.replace("\\", "/"), quote=True)


def _stem(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
