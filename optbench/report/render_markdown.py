"""``report.md``: the same blocks as ``index.html`` in GitHub-flavoured Markdown, figures as
images by relative path (PNG, with a link to the SVG), tables as pipe tables."""

from .document import Figure, Table, Text, table_cells


def render(document):
    """The Markdown text of ``document`` (a :class:`.document.Document`)."""
    lines = [f"# {document.title}", ""]
    if document.subtitle:
        lines += [document.subtitle, ""]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _block(block)
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _block(block):
    if isinstance(block, Text):
        return [block.text]
    if isinstance(block, Figure):
        data = ", ".join(f"[{_name(path)}]({_url(path)})" for path in block.data)
        links = f"[SVG]({_url(block.svg)})" + (f", data: {data}" if data else "")
        return [f"![{_escape(block.caption)}]({_url(block.png)})", "", f"{block.caption} ({links})"]
    if isinstance(block, Table):
        header, rows = table_cells(block.frame)
        numeric = [block.frame[column].dtype.kind in "iuf" for column in block.frame.columns]
        rule = ["---:" if is_num else "---" for is_num in numeric]
        table = [_row(header), _row(rule)] + [_row(row) for row in rows]
        return [f"{block.caption} (data: [{_name(block.data)}]({_url(block.data)}))", "", *table]
    raise TypeError(f"block must be Text, Figure or Table, got {type(block).__name__}")


def _row(cells):
    return "| " + " | ".join(_escape(cell) for cell in cells) + " |"


def _escape(text):
    return str(text).replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _url(path):
    return path.replace("\\", "/").replace(" ", "%20")


def _name(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1]
