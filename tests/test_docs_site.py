"""The documentation site (mkdocs.yml, docs/): ``mkdocs build --strict`` passes (no broken link, no
warning), the campaign file reference is the one generated from the schema, and the API page is
rendered from the code's docstrings. Built into a temporary directory, never into the repository."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aid2e.campaign_file import ELSEWHERE, SCHEMA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [name for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
               if not _importable(name)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed in {sys.prefix}: run bash scripts/docs.sh "
                    "(or scripts/setup.sh --test), which installs the docs tools")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"mkdocs build --strict exited {done.returncode}:\n{done.stderr[-4000:]}"
    return out


def test_campaign_file_reference_is_generated_from_the_schema(site: Path) -> None:
    page = (site / "reference" / "campaign-file" / "index.html").read_text()
    assert "aid2e:campaign-reference" not in page
    for key in SCHEMA["properties"]:
        assert f"<code>{key}</code>" in page, key
    assert "<code>parameters.&lt;name&gt;.bounds</code>" in page
    assert "&lt;output_dir&gt;/&lt;name&gt;" in page          # not swallowed as an HTML tag
    assert "{type: joblib | slurm | psij | panda | ..., options}" in page   # a '|' in a meaning stays in its cell


def test_the_migration_pages_table_of_keys_is_the_validators(site: Path) -> None:
    """Every key ``aid2e validate`` knows from the AID2E-framework, the older scheduler, Ax or Slurm
    is in the migration page's table, with where it goes (docs/hooks.py renders campaign_file.ELSEWHERE)."""
    page = (site / "migration" / "index.html").read_text()
    assert "aid2e:elsewhere-keys" not in page
    rows = [row for row in page.split("<tr>")[1:] if row.lstrip().startswith("<td><code>")]
    shown = {row.split("<code>", 1)[1].split("</code>", 1)[0]: row.split("<td>")[2].split("</td>")[0]
             for row in rows}
    assert set(ELSEWHERE) <= set(shown), sorted(set(ELSEWHERE) - set(shown))
    assert shown["n_initial_samples"] == "optimizer.initial_trials"
    assert shown["runner_type"] == "backends: {&lt;name&gt;: {type: joblib | slurm | psij | panda, ...}}"


def test_api_page_is_rendered_from_the_docstrings(site: Path) -> None:
    page = (site / "reference" / "api" / "index.html").read_text()
    for name in ("AxScheduler", "run_optimization", "Workflow", "BackendConformance", "JobLibRunner", "SlurmRunner",
                 "PanDARunner", "JobRequest", "aid2e_backends", "ConfigError", "CompactGeometry", "PageRun"):
        assert name in page, name
    assert ":::" not in page
    assert ":class:" not in page and ":meth:" not in page      # docs/hooks.py shows Sphinx roles as code


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(items):
        for item in items:
            for value in item.values():
                yield from pages(value) if isinstance(value, list) else [value]

    listed = list(pages(nav))
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk, "every page under docs/ is in mkdocs.yml's nav, and only those"
    assert len(listed) >= 18
    for page in [p.removesuffix(".md") + "/index.html" if p != "index.md" else "index.html" for p in listed]:
        assert (site / page).is_file(), page
    assert not (site / "hooks.py").exists()


def test_a_missing_docstring_is_a_warning_that_fails_the_strict_build(tmp_path, monkeypatch) -> None:
    """docs/hooks.py warns (on mkdocs' logger: --strict fails) for each undocumented public member of an
    object a page shows; inherited docstrings count, test methods' names are their statement."""
    monkeypatch.syspath_prepend(str(ROOT / "docs"))
    import hooks

    (tmp_path / "undocumented_module.py").write_text(textwrap.dedent('''
        class Base:
            """A base."""
            def run(self):
                """Run."""

        class Thing(Base):
            """A thing."""
            def run(self):
                pass
            def bare(self):
                pass
            @property
            def size(self):
                return 1
            def test_says_it_in_its_name(self):
                pass
            def _private(self):
                pass

        def helper():
            pass
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert hooks.undocumented("undocumented_module.Thing") == ["undocumented_module.Thing.bare",
                                                               "undocumented_module.Thing.size"]
    assert hooks.undocumented("undocumented_module") == ["undocumented_module", "undocumented_module.helper"]
    assert hooks.log.name.startswith("mkdocs.")          # mkdocs counts the warnings of its own loggers


def test_the_architecture_page_maps_every_module_of_the_core() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "core" / "src" / "aid2e"
    modules = [p.name for p in package.glob("*.py") if not p.name.startswith("__")]
    modules += [f"{p.name}/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    missing = [name for name in modules if f"`{name}`" not in page]
    assert not missing, f"docs/architecture.md's module map lacks {missing}"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
