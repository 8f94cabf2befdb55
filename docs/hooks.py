"""mkdocs hooks (mkdocs.yml: hooks): the campaign file reference is generated from the schema, and the
Sphinx roles of the code's docstrings (:class:`~aid2e.x.Y`) are shown as plain code on the API page."""

from __future__ import annotations

import html
import re

MARKER = "<!-- aid2e:campaign-reference -->"
# mkdocstrings renders :meth:`x` as ":meth:<code>x</code>"; the docstrings are prose, not Sphinx
_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):<code>~?")


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace the marker with aid2e.campaign_file.reference(), the table `aid2e schema --markdown` prints."""
    if MARKER not in markdown:
        return markdown
    from aid2e.campaign_file import reference

    return markdown.replace(MARKER, _escape_outside_code(reference()))


def on_page_content(content: str, page, config, files) -> str:
    return _ROLE.sub("<code>", content)


def _escape_outside_code(markdown: str) -> str:
    # the descriptions say <output_dir>/<name>: outside code spans Markdown would take those for HTML tags
    parts = markdown.split("`")
    return "`".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))
