"""A trial's copy of a DD4hep compact XML file, with the trial's parameters written into it.

ePIC's design parameters live in compact files (``$DETECTOR_PATH/compact/pid/drich.xml``): a
constant's ``value``, or an attribute of a detector element, with a unit. A geometry stage writes
its trial's own copy and points the simulation at it::

    from aid2e.geometry import XmlParameter, write_compact

    PARAMETERS = [
        XmlParameter("aerogel_thickness", ".//constant[@name='DRICH_aerogel_thickness']", unit="cm"),
        XmlParameter("focus_tune_x", ".//detector[@name='DRICH']/mirror", attribute="focus_tune_x", unit="cm"),
    ]

    def geometry(aerogel_thickness, focus_tune_x):       # a function stage
        write_compact("drich.xml", "drich_trial.xml", PARAMETERS,
                      {"aerogel_thickness": aerogel_thickness, "focus_tune_x": focus_tune_x})

In a workflow, :class:`CompactGeometry` is that stage, ready-made: it writes the trial's copy into
its job directory and gives its path as its output (``{"compact": "<path>"}``), which the next
stages find in their job file::

    Stage("geometry", function=CompactGeometry("drich.xml", PARAMETERS)),
    Stage("overlaps", script=["bash", "check_overlaps.sh"], exit_codes={9: "penalty"}),

Each path (ElementTree's XPath subset: ``.//tag[@attr='v']/child``) must match exactly one
element, and the attribute must exist there: a typo is an error naming the file and the path,
never a silently unchanged geometry. Everything else inside the root element (comments too) is
kept; the copy is written atomically. Values are written exactly (``repr`` of a float) with ``*unit`` appended.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen

from . import atomic
from .errors import ConfigError


@frozen
class XmlParameter:
    """Where the trial parameter ``parameter`` goes: the element at ``path``, its ``attribute``,
    written as ``<value>*<unit>`` (no unit: the bare value)."""

    parameter: str
    path: str
    attribute: str = field(default="value", kw_only=True)
    unit: str | None = field(default=None, kw_only=True)


def text_of(value: Any, unit: str | None) -> str:
    """A parameter value as a compact file writes it: exact, with ``*unit`` when given."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"a geometry value must be a number or a string, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    return f"{text}*{unit}" if unit else text


def write_compact(template: str | Path, destination: str | Path, substitutions: Sequence[XmlParameter],
                  parameters: Mapping[str, Any]) -> Path:
    """Write ``destination``: ``template`` with each substitution's attribute set from
    ``parameters``. Returns the destination; a one-line ConfigError names what does not fit."""
    source = Path(template)
    try:
        tree = ET.parse(source, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True)))
    except OSError as exc:
        raise ConfigError(f"cannot read the compact file {source}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise ConfigError(f"{source} is not well-formed XML: {exc}") from exc
    root = tree.getroot()
    for item in substitutions:
        if item.parameter not in parameters:
            raise ConfigError(f"geometry parameter {item.parameter!r} is not among the trial's parameters "
                              f"({', '.join(sorted(parameters)) or 'none'})")
        path = item.path if not item.path.startswith("/") else "." + item.path
        try:
            found = root.findall(path)
        except (SyntaxError, TypeError, KeyError) as exc:  # ElementPath's answers to a malformed path
            raise ConfigError(f"geometry parameter {item.parameter!r}: path {item.path!r} is not an "
                              f"ElementTree path: {exc}") from exc
        if len(found) != 1:
            raise ConfigError(f"geometry parameter {item.parameter!r}: path {item.path!r} matches {len(found)} "
                              f"elements in {source}, not one")
        element = found[0]
        if item.attribute not in element.attrib:
            raise ConfigError(f"geometry parameter {item.parameter!r}: the element at {item.path!r} in {source} "
                              f"has no attribute {item.attribute!r} (it has: {', '.join(element.attrib) or 'none'})")
        element.set(item.attribute, text_of(parameters[item.parameter], item.unit))
    body = ET.tostring(root, encoding="unicode")
    out = Path(destination)
    atomic.write_bytes(out, ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode())
    return out


@frozen
class CompactGeometry:
    """A workflow stage function writing the trial's copy of the compact file ``template`` (its
    file name, in the job's directory) with ``substitutions`` from the trial's parameters; its
    output is ``{"compact": "<path of the copy>"}``. Everything is checked when the workflow is
    set except what only a trial's values can break."""

    template: str = field(converter=lambda p: str(Path(p).resolve()))
    substitutions: tuple[XmlParameter, ...] = field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not Path(self.template).is_file():
            raise ConfigError(f"compact file not found: {self.template}")
        for item in self.substitutions:
            if not isinstance(item, XmlParameter):
                raise ConfigError(f"CompactGeometry substitutions are XmlParameter(...), got {item!r}")

    def __call__(self, parameters: Mapping[str, Any], job_dir: str) -> dict[str, str]:
        destination = write_compact(self.template, Path(job_dir) / Path(self.template).name, self.substitutions,
                                    parameters)
        return {"compact": str(destination)}


__all__ = ["CompactGeometry", "XmlParameter", "text_of", "write_compact"]
