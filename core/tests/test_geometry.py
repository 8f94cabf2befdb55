"""A trial's copy of a DD4hep compact file (aid2e.geometry), on a small compact file shaped like
ePIC's compact/pid/drich.xml (core/tests/data/drich_mini.xml)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aid2e.errors import ConfigError
from aid2e.geometry import XmlParameter, write_compact

DRICH = Path(__file__).parent / "data" / "drich_mini.xml"
PARAMETERS = [
    XmlParameter("aerogel_thickness", ".//constant[@name='DRICH_aerogel_thickness']", unit="cm"),
    XmlParameter("focus_tune_x", ".//detector[@name='DRICH']/mirror", attribute="focus_tune_x", unit="cm"),
    XmlParameter("material", "//radiator/aerogel", attribute="material"),
]


def attributes(path: Path) -> list[tuple[str, dict[str, str]]]:
    return [(str(e.tag), dict(e.attrib)) for e in ET.parse(path).iter()]


def test_the_trials_copy_has_its_values_and_nothing_else_changed(tmp_path):
    out = write_compact(DRICH, tmp_path / "drich.xml", PARAMETERS,
                        {"aerogel_thickness": 0.1 + 0.2, "focus_tune_x": -3, "material": "Aerogel_X", "other": 1})
    tree = ET.parse(out)
    assert tree.find(".//constant[@name='DRICH_aerogel_thickness']").get("value") == "0.30000000000000004*cm"
    assert tree.find(".//mirror").get("focus_tune_x") == "-3*cm"
    assert tree.find(".//aerogel").get("material") == "Aerogel_X"
    before, after = attributes(DRICH), attributes(out)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 3  # the three attributes, nothing else
    assert "<!-- aerogel radiator -->" in out.read_text()  # comments inside the document stay
    assert DRICH.read_text().count("4.0*cm") == 1  # the template is untouched


@pytest.mark.parametrize("substitution, parameters, message", [
    (XmlParameter("t", ".//constant[@name='DRICH_no_such']"), {"t": 1.0}, "matches 0 elements"),
    (XmlParameter("t", ".//constant"), {"t": 1.0}, "matches 3 elements"),
    (XmlParameter("t", ".//mirror", attribute="focus_tune_y"), {"t": 1.0}, "has no attribute 'focus_tune_y'"),
    (XmlParameter("t", ".//mirror[", attribute="x"), {"t": 1.0}, "is not an ElementTree path"),
    (XmlParameter("t", ".//mirror", attribute="backplane"), {"x": 1.0}, "'t' is not among the trial's parameters"),
    (XmlParameter("t", ".//mirror", attribute="backplane"), {"t": [1]}, "must be a number or a string"),
])
def test_what_does_not_fit_is_one_line(tmp_path, substitution, parameters, message):
    with pytest.raises(ConfigError) as info:
        write_compact(DRICH, tmp_path / "out.xml", [substitution], parameters)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out.xml").exists()


def test_a_broken_template_is_one_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<lccdd><define></lccdd>")
    with pytest.raises(ConfigError, match="is not well-formed XML"):
        write_compact(bad, tmp_path / "out.xml", [], {})
    with pytest.raises(ConfigError, match="cannot read the compact file"):
        write_compact(tmp_path / "missing.xml", tmp_path / "out.xml", [], {})


def test_the_module_docstrings_example_runs(tmp_path, monkeypatch):
    import shutil
    import textwrap

    import aid2e.geometry

    block = []
    for line in aid2e.geometry.__doc__.split("::\n", 1)[1].splitlines():
        if line and not line.startswith(" "):
            break  # the indented block ends at the next paragraph
        block.append(line)
    example = textwrap.dedent("\n".join(block))
    shutil.copy(DRICH, tmp_path / "drich.xml")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "aid2e.geometry docstring", "exec"), namespace)
    namespace["geometry"](aerogel_thickness=2.5, focus_tune_x=-1.0)
    tree = ET.parse(tmp_path / "drich_trial.xml")
    assert tree.find(".//constant[@name='DRICH_aerogel_thickness']").get("value") == "2.5*cm"
    assert tree.find(".//mirror").get("focus_tune_x") == "-1.0*cm"
