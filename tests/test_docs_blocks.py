"""Every code block of the README and of the pages under docs/ says what it is, and every block
marked ``<!-- run -->`` runs (aid2e.testing.docblocks): each page in a new directory, in a new
interpreter, against the real engines it needs (the test Slurm, podman, Apptainer, ...), which
skip here or fail where ``AID2E_REQUIRE`` promises them. The runner's own checks are tested first,
so that a block that fails, prints the wrong thing or exits wrongly does fail its page."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aid2e.testing.docblocks import (
    DocBlockError,
    PageRun,
    console_commands,
    iter_pages,
    output_matches,
    parse,
    problems,
)
from aid2e.testing.requirements import require

ROOT = Path(__file__).resolve().parents[1]
PAGES = [page for page in iter_pages(ROOT) if any(block.kind == "run" for block in parse(page.read_text()))]
CONTAINERS = Path(os.environ.get("AID2E_CONTAINERS_STATE", "/var/lib/aid2e-containers/state.json"))


# Each need: a context manager, called with the need's name and the page's directory, that checks
# the engine is here (else the page's test skips, or fails where AID2E_REQUIRE promises it), gives
# the variables the page runs with, and cleans up after the page.

@contextlib.contextmanager
def _containers(engine: str, _directory: Path) -> Iterator[dict[str, str]]:
    name = "apptainer.json" if engine == "apptainer" else CONTAINERS.name
    try:
        state = json.loads(CONTAINERS.with_name(name).read_text())
    except (OSError, ValueError):
        state = {}
    status = state.get(engine, "not set up (scripts/services/)")
    require(engine, status == "ok", f"{engine} is not usable here: {status}")
    yield {"DOCKER_HOST": state["docker_host"]} if engine == "docker" else {}


@contextlib.contextmanager
def _slurm(_need: str, _directory: Path) -> Iterator[dict[str, str]]:
    from aid2e_psij.testing import require_slurm

    require_slurm()
    yield {}


@contextlib.contextmanager
def _browser(_need: str, _directory: Path) -> Iterator[dict[str, str]]:
    from aid2e.testing.browser import require_browser

    require_browser()
    yield {}


def _jwt(claims: dict) -> str:
    """An unsigned JWT (aid2e reads only its expiry; the page's server compares it whole)."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return ".".join([part(b'{"alg": "none", "typ": "JWT"}'), part(json.dumps(claims).encode()), part(b"signature")])


@contextlib.contextmanager
def _panda(_need: str, directory: Path) -> Iterator[dict[str, str]]:
    """No PanDA server can run here (see aid2e_panda.testing): a loopback FakePandaServer, which
    answers the unmodified panda-client's calls with PanDA's protocol and runs each job on this
    machine, serves the page; the page gets its address and the OIDC credentials a grid user's
    login gives (the VO, and a token file the server accepts, outside the page's directory)."""
    pytest.importorskip("pandaclient", reason="the PanDA page needs panda-client (pip install -e plugins/panda)")
    from aid2e_panda.testing import FakePandaServer

    token = _jwt({"sub": "aid2e-docs", "exp": 4_102_444_800})  # 2100-01-01
    token_file = directory.parent / "panda-token"
    token_file.write_text(token)
    server = FakePandaServer(token=token, vo="wlcg").start()
    try:
        yield {**server.environment(), "PANDA_AUTH": "oidc", "PANDA_AUTH_VO": "wlcg",
               "OIDC_AUTH_TOKEN_FILE": str(token_file)}
    finally:
        server.stop()


NEEDS: dict[str, Callable[[str, Path], contextlib.AbstractContextManager[dict[str, str]]]] = {
    "slurm": _slurm, "podman": _containers, "docker": _containers, "apptainer": _containers, "browser": _browser,
    "panda": _panda}


def test_every_block_of_the_readme_and_the_docs_says_what_it_is() -> None:
    found = []
    for page in iter_pages(ROOT):
        blocks = parse(page.read_text(), str(page.relative_to(ROOT)))
        found += problems(blocks)
        found += [f"{b.where}: needs={n} is not one of {sorted(NEEDS)}" for b in blocks for n in b.needs - set(NEEDS)]
    assert not found, "\n".join(found)
    assert ROOT / "README.md" in PAGES


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_pages_blocks_run(page: Path, tmp_path: Path) -> None:
    blocks = parse(page.read_text())
    env = dict(os.environ)
    directory = tmp_path / "page"
    directory.mkdir()
    timeout = sum(float(b.options.get("timeout", 600)) for b in blocks if b.kind == "run")
    with contextlib.ExitStack() as stack:
        for need in sorted({n for block in blocks for n in block.needs}):
            env.update(stack.enter_context(NEEDS[need](need, directory)))
        done = subprocess.run([sys.executable, "-m", "aid2e.testing.docblocks", str(page), str(directory)], env=env,
                              cwd=directory, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    assert done.returncode == 0, f"{done.stderr[-6000:]}\n--- stdout:\n{done.stdout[-4000:]}"
    ran = sum(1 for block in blocks if block.kind == "run")
    assert f": {ran} blocks ran in " in done.stdout


def test_the_panda_need_serves_the_page_and_stops_after_it(tmp_path: Path) -> None:
    """The PanDA stand-in answers with the page's credentials only, and only while the page runs."""
    import urllib.error
    import urllib.request

    directory = tmp_path / "page"
    directory.mkdir()
    with NEEDS["panda"]("panda", directory) as env:
        url = env["PANDA_URL_SSL"].split("/server/")[0] + "/api/v1/task/get_status?task_id=1"
        token = Path(env["OIDC_AUTH_TOKEN_FILE"]).read_text()
        assert not Path(env["OIDC_AUTH_TOKEN_FILE"]).is_relative_to(directory)
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Origin": "wlcg"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert json.loads(reply.read())["message"] == "Task not found"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 403
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)


# The runner itself: each check must be able to fail.

def run_page(tmp_path: Path, text: str) -> int:
    page = tmp_path / "page.md"
    page.write_text(text)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        return PageRun(page, work).run()
    finally:
        os.chdir(cwd)


def test_a_page_runs_in_order_sharing_python_names_and_files(tmp_path: Path) -> None:
    text = ("<!-- file: data/numbers.txt -->\n```text\n3\n4\n```\n\n"
            "<!-- run -->\n```python\ntotal = sum(int(x) for x in open('data/numbers.txt'))\n"
            "print('total', total)\n```\n"
            "<!-- output -->\n```text\ntotal 7\n```\n"
            "<!-- run -->\n```python\nassert total == 7\n```\n"
            "<!-- run -->\n```console\n$ echo $((2 + 3)) \\\n  apples\n5 apples\n"
            "$ printf 'a  b\\nc\\n'\na b\n...\n```\n"
            "<!-- not run: shown only -->\n```python\nraise SystemExit(1)\n```\n")
    assert run_page(tmp_path, text) == 3


@pytest.mark.parametrize("text, message", [
    ("<!-- run -->\n```python\nraise ValueError('bad geometry')\n```\n", "raised ValueError: bad geometry"),
    ("<!-- run -->\n```bash\nfalse\n```\n", "exit 1, expected 0"),
    ("<!-- run: exit=2 -->\n```bash\ntrue\n```\n", "exit 0, expected 2"),
    ("<!-- run -->\n```console\n$ echo apples\npears\n```\n", "expected the line 'pears'"),
    ("<!-- run -->\n```python\nprint('one')\n```\n<!-- output -->\n```\ntwo\n```\n", "expected the line 'two'"),
    ("<!-- run: timeout=1 -->\n```bash\nsleep 30\n```\n", "did not end within 1 s"),
    ("```python\nprint(1)\n```\n", "an unmarked python block"),
    ("<!-- run -->\n```yaml\na: 1\n```\n", "only python, bash, sh, console blocks run"),
    ("<!-- not run -->\n```python\nx\n```\n", "needs its reason"),
    ("<!-- file: ../escape.txt -->\n```\nx\n```\n", "a relative path inside"),
    ("<!-- output -->\n```\nx\n```\n", "must follow a <!-- run --> block"),
    ("<!-- run: retries=3 -->\n```bash\ntrue\n```\n", "run option 'retries=3'"),
    ("<!-- run -->\n```python\nprint(1)\n", "never closed"),
])
def test_a_block_that_fails_or_is_marked_wrongly_fails_its_page(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DocBlockError) as caught:
        run_page(tmp_path, text)
    assert message in str(caught.value)
    assert "page.md:" in str(caught.value)


def test_a_failure_names_the_pages_line(tmp_path: Path) -> None:
    with pytest.raises(DocBlockError) as caught:
        run_page(tmp_path, "# title\n\ntext\n\n<!-- run -->\n```python\nx = 1\nundefined_name\n```\n")
    assert "page.md:6: the python block raised NameError" in str(caught.value)
    assert 'page.md", line 8' in str(caught.value)          # the traceback points at the page's own line


def test_output_matching() -> None:
    assert output_matches("a  b\n...c", "x\na b\nzzc\n") is None
    assert output_matches("b\na", "a\nb\n") is not None          # in order
    assert output_matches("", "anything") is None
    assert console_commands("$ a \\\nb\nout\n$ c\n") == [("a \\\nb", "out"), ("c", "")]
    with pytest.raises(DocBlockError):
        console_commands("stray\n$ a\n")


def test_indented_blocks_in_lists_are_found() -> None:
    blocks = parse("- item\n\n  <!-- run -->\n  ```python\n  x = 1\n  ```\n")
    assert [(b.kind, b.code, b.line) for b in blocks] == [("run", "x = 1\n", 4)]
