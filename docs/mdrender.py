"""Render the small Markdown subset of ``benchmarks/README.md`` as reStructuredText.

The benchmarks page shows the recorded results without adding a Markdown parser to the
docs dependencies. Headings, paragraphs, bullet and numbered lists, fenced code blocks,
pipe tables, block quotes, inline code, emphasis and links are translated; the result is
parsed once with docutils, and if docutils reports any problem, the page falls back to
showing the Markdown source verbatim, so a construct this module does not know can never
break the docs build.
"""

import io
import re

_HEADING_CHARS = ["=", "-", "~", "^", '"', "'"]
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text):
    """Translate inline Markdown (code spans, links) outside code spans."""
    pieces = []
    position = 0
    for match in _INLINE_CODE.finditer(text):
        pieces.append(_links(text[position : match.start()]))
        # reST ends an inline literal only before a space or punctuation: "``x``s"
        # needs an escaped space, which renders as nothing
        before = (
            "\\ " if match.start() > 0 and text[match.start() - 1].isalnum() else ""
        )
        after = "\\ " if text[match.end() : match.end() + 1].isalnum() else ""
        pieces.append(f"{before}``{match.group(2).strip()}``{after}")
        position = match.end()
    pieces.append(_links(text[position:]))
    return "".join(pieces)


def _links(text):
    text = re.sub(r"__(\S.*?\S|\S)__", r"**\1**", text)
    return _LINK.sub(lambda m: f"`{m.group(1)} <{m.group(2)}>`__", text)


def _split_row(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def _table(rows):
    header, body = rows[0], rows[1:]
    width = len(header)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        row = (row + [""] * width)[:width]
        out.append(f"   * - {_inline(row[0]) or '..'}")
        out.extend(f"     - {_inline(cell) or '..'}" for cell in row[1:])
    return out + [""]


def markdown_to_rst(markdown, *, title_level=0, drop_title=False):
    """Translate ``markdown`` to reStructuredText.

    Parameters
    ----------
    markdown : str
        The Markdown text.
    title_level : int, default=0
        Section level of the shallowest Markdown heading: 0 underlines it with ``=``,
        1 with ``-``, and so on, so that the text can sit below a page title.
    drop_title : bool, default=False
        Leave out a first heading that is the only one of its level (a README's
        title), for a page that has its own title.

    Returns
    -------
    rst : str
        The translation, or a ``code-block`` holding ``markdown`` verbatim when the
        translation does not parse cleanly.
    """
    rst = _translate(markdown, title_level, drop_title)
    if _parses_cleanly(rst):
        return rst
    verbatim = "\n".join(f"   {line}" if line else "" for line in markdown.splitlines())
    return f".. code-block:: markdown\n\n{verbatim}\n"


def _drop_title(lines):
    """Drop a README's title: a first heading that is the only one of its level."""
    content = [index for index, line in enumerate(lines) if line.strip()]
    if not content:
        return lines
    first = _HEADING.match(lines[content[0]])
    if first is None:
        return lines
    level = len(first.group(1))
    headings = [m for m in map(_HEADING.match, lines) if m]
    if sum(len(m.group(1)) <= level for m in headings) != 1:
        return lines
    return lines[: content[0]] + lines[content[0] + 1 :]


def _translate(markdown, title_level, drop_title):
    lines = markdown.splitlines()
    if drop_title:
        lines = _drop_title(lines)
    levels = sorted({len(m.group(1)) for m in map(_HEADING.match, lines) if m})
    out = []
    index = 0
    in_fence = None
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if in_fence is not None:
            if fence and fence.group(2).startswith(in_fence):
                in_fence = None
                out.append("")
            else:
                out.append(f"   {line}" if line.strip() else "")
            index += 1
            continue
        if fence:
            in_fence = fence.group(2)[0] * 3
            language = fence.group(3) or "text"
            out += ["", f".. code-block:: {language}", ""]
            index += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            depth = title_level + levels.index(len(heading.group(1)))
            text = _inline(heading.group(2))
            char = _HEADING_CHARS[min(depth, len(_HEADING_CHARS) - 1)]
            out += ["", text, char * max(len(text), 3), ""]
            index += 1
            continue
        if (
            "|" in line
            and index + 1 < len(lines)
            and _TABLE_SEPARATOR.match(lines[index + 1])
        ):
            rows = [_split_row(line)]
            index += 2
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                rows.append(_split_row(lines[index]))
                index += 1
            out += [""] + _table(rows)
            continue
        if re.match(r"^\s*([-*_])(\s*\1){2,}\s*$", line):
            index += 1
            continue
        if line.startswith(">"):
            out.append("   " + _inline(line.lstrip(">").strip()))
            index += 1
            continue
        bullet = re.match(r"^(\s*)[*+-]\s+(.*)$", line)
        if bullet:
            if _ends_paragraph(out):
                out.append("")
            out.append(f"{bullet.group(1)}- {_inline(bullet.group(2))}")
            index += 1
            continue
        numbered = re.match(r"^(\s*)(\d+)[.)]\s+(.*)$", line)
        if numbered:
            if _ends_paragraph(out):
                out.append("")
            out.append(
                f"{numbered.group(1)}{numbered.group(2)}. {_inline(numbered.group(3))}"
            )
            index += 1
            continue
        out.append(_inline(line))
        index += 1
    return "\n".join(out).strip("\n") + "\n"


def _ends_paragraph(out):
    """Whether a list starting now needs a blank line to leave a paragraph."""
    if not out or not out[-1].strip():
        return False
    last = out[-1]
    # a list item, or the indented continuation of one, continues the same list
    return not (last.startswith((" ", "- ")) or re.match(r"^\d+\. ", last))


def _parses_cleanly(rst):
    from docutils.core import publish_doctree

    # plain docutils knows "code" but not Sphinx's "code-block"
    plain = rst.replace(".. code-block::", ".. code::")
    stream = io.StringIO()
    try:
        publish_doctree(
            plain,
            settings_overrides={
                "report_level": 2,
                "halt_level": 5,
                "warning_stream": stream,
                "syntax_highlight": "none",
            },
        )
    except Exception:  # any docutils failure means: show the source instead
        return False
    return stream.getvalue() == ""
