"""mkdocs hooks (mkdocs.yml: hooks): the campaign file reference is generated from the schema, and the
migration page's table of keys from elsewhere from the validator's own table; every
object a page shows with ``::: path`` has docstrings (its own and its public methods' and properties',
inherited ones count; a test method's name is its statement), else a warning, which fails
``mkdocs build --strict``; and the Sphinx roles of the code's docstrings (:class:`~aid2e.x.Y`) are
shown as plain code."""

from __future__ import annotations

import html
import importlib
import inspect
import logging
import re

MARKER = "<!-- aid2e:campaign-reference -->"
#: the migration page's table of keys from elsewhere (aid2e.campaign_file.ELSEWHERE)
ELSEWHERE_MARKER = "<!-- aid2e:elsewhere-keys -->"
# mkdocstrings renders :meth:`x` as ":meth:<code>x</code>"; the docstrings are prose, not Sphinx
_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):<code>~?")
_AUTODOC = re.compile(r"^::: *(\S+)", re.MULTILINE)
log = logging.getLogger("mkdocs.hooks.aid2e")   # a warning here fails mkdocs build --strict


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Check the docstrings of what the page documents; replace the markers with
    aid2e.campaign_file.reference(), the table `aid2e schema --markdown` prints, and with
    aid2e.campaign_file.elsewhere_reference(), the keys from elsewhere `aid2e validate` knows."""
    for path in _AUTODOC.findall(markdown):
        for name in undocumented(path):
            log.warning("%s: %s has no docstring (the API reference would leave it out)", page.file.src_path, name)
    if MARKER in markdown:
        from aid2e.campaign_file import reference

        markdown = markdown.replace(MARKER, _escape_outside_code(reference()))
    if ELSEWHERE_MARKER in markdown:
        from aid2e.campaign_file import elsewhere_reference

        markdown = markdown.replace(ELSEWHERE_MARKER, _escape_outside_code(elsewhere_reference()))
    return markdown


def undocumented(path: str) -> list[str]:
    """``path`` and its public methods and properties that have no docstring."""
    obj = _resolve(path)
    missing = [] if inspect.getdoc(obj) else [path]
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith(("_", "test_")):
                continue
            if isinstance(member, property) or inspect.isfunction(getattr(member, "__func__", member)):
                if not inspect.getdoc(getattr(obj, name)) and not (isinstance(member, property) and member.__doc__):
                    missing.append(f"{path}.{name}")
    elif inspect.ismodule(obj):
        for name, member in vars(obj).items():
            if (not name.startswith("_") and getattr(member, "__module__", None) == obj.__name__
                    and (inspect.isclass(member) or inspect.isfunction(member)) and not inspect.getdoc(member)):
                missing.append(f"{path}.{name}")
    return missing


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"cannot import {path}")


def on_page_content(content: str, page, config, files) -> str:
    return _ROLE.sub("<code>", content)


def _escape_outside_code(markdown: str) -> str:
    # the descriptions say <output_dir>/<name>: outside code spans Markdown would take those for HTML tags
    parts = markdown.split("`")
    return "`".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))
