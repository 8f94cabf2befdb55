"""Run the fenced code blocks of Markdown pages, so documentation cannot rot.

Every fenced block must say what it is, in an HTML comment on the line just before it (invisible
on GitHub and on the site):

- ``<!-- run -->``: run it. ``python`` blocks run in one interpreter per page, in order, sharing
  their names (like a notebook); ``bash``/``sh`` blocks run with ``bash -euo pipefail``; in a
  ``console`` block each ``$ command`` runs in bash and the lines after it are its expected output
  (see :func:`output_matches`). Options, space-separated: ``exit=N`` (the exit code a bash block or
  a console block's last command must give; default 0), ``timeout=S`` (seconds, default 600),
  ``needs=slurm+podman`` (what the page's test must provide: the test skips or, where
  ``AID2E_REQUIRE`` promises it, fails without it).
- ``<!-- file: PATH -->``: write the block to ``PATH`` (relative to the page's directory), for
  later blocks to use: a campaign file, a script, a module.
- ``<!-- output -->``: the output the run block before it printed must contain these lines.
- ``<!-- not run: why -->``: shown only, with the reason (e.g. what a real grid would need).

A page runs in a new empty directory holding a copy of the repository's ``examples/``, with this
interpreter's ``bin`` first on ``PATH`` (so ``aid2e`` is this installation's). A block that fails
stops the page with its file and line. ``python -m aid2e.testing.docblocks PAGE.md [DIR]`` runs one
page (in DIR, else a temporary directory); ``--list`` prints each block's line, language and marker.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("run", "file", "output", "not run")
RUN_LANGUAGES = ("python", "bash", "sh", "console")
_MARKER = re.compile(r"^\s*<!--\s*(run|file|output|not run)\s*(?::\s*(.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


class DocBlockError(Exception):
    """A block that is unmarked, marked wrongly, or failed when run; its text names the page and line."""


@dataclass
class Block:
    """One fenced block: where it is, its language and code, and its marker."""

    path: str
    line: int                      # the line of the opening fence (1-based)
    language: str
    code: str
    kind: str | None               # one of KINDS, or None when unmarked
    argument: str = ""             # the file path, the reason, or the run options as written
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def needs(self) -> set[str]:
        return {n for n in self.options.get("needs", "").split("+") if n}


def parse(text: str, path: str = "<page>") -> list[Block]:
    """The fenced blocks of a Markdown text, with the marker on the line before each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, ticks, language = fence.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{re.escape(ticks[0])}{{{len(ticks)},}}\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i == len(lines):
            raise DocBlockError(f"{path}:{start + 1}: a fenced block is never closed")
        i += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = _MARKER.match(lines[before]) if before >= 0 else None
        block = Block(path, start + 1, language.lower(), "\n".join(body) + "\n", None)
        if marker:
            block.kind, block.argument = marker.group(1), (marker.group(2) or "").strip()
            if block.kind == "run":
                block.options = _options(block)
        blocks.append(block)
    return blocks


def _options(block: Block) -> dict[str, str]:
    options = {}
    for item in block.argument.split():
        key, equals, value = item.partition("=")
        if not equals or key not in ("exit", "timeout", "needs") or not value:
            raise DocBlockError(f"{block.where}: run option {item!r}: use exit=N, timeout=SECONDS or needs=a+b")
        if key in ("exit", "timeout") and not value.isdigit():
            raise DocBlockError(f"{block.where}: run option {item!r}: {key} must be a whole number")
        options[key] = value
    return options


def problems(blocks: list[Block]) -> list[str]:
    """Blocks that do not say what they are, or say it wrongly: one line each."""
    found = []
    previous: Block | None = None
    for block in blocks:
        if block.kind is None:
            found.append(f"{block.where}: an unmarked {block.language or 'plain'} block: put <!-- run -->, "
                         "<!-- file: PATH -->, <!-- output --> or <!-- not run: why --> on the line before it")
        elif block.kind == "run" and block.language not in RUN_LANGUAGES:
            found.append(f"{block.where}: <!-- run --> on a {block.language or 'plain'} block: "
                         f"only {', '.join(RUN_LANGUAGES)} blocks run (write other files with <!-- file: PATH -->)")
        elif block.kind == "file" and (not block.argument or Path(block.argument).is_absolute()
                                       or ".." in Path(block.argument).parts):
            found.append(f"{block.where}: <!-- file: PATH --> needs a relative path inside the page's directory")
        elif block.kind == "not run" and not block.argument:
            found.append(f"{block.where}: <!-- not run: why --> needs its reason")
        elif block.kind == "output" and (previous is None or previous.kind != "run"):
            found.append(f"{block.where}: <!-- output --> must follow a <!-- run --> block")
        previous = block
    return found


def _pattern(line: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in " ".join(line.split()).split("...")]
    return re.compile(".*".join(parts))


def output_matches(expected: str, actual: str) -> str | None:
    """None when every non-blank expected line matches an actual line, in order (runs of spaces are
    one space; ``...`` stands for any text); else what is missing. Extra actual lines are allowed."""
    actual_lines = [" ".join(line.split()) for line in actual.splitlines()]
    position = 0
    for wanted in (line for line in expected.splitlines() if line.strip()):
        pattern = _pattern(wanted)
        while position < len(actual_lines) and not pattern.fullmatch(actual_lines[position]):
            position += 1
        if position == len(actual_lines):
            return f"expected the line {wanted.strip()!r} (after the lines matched before it)"
        position += 1
    return None


def console_commands(code: str) -> list[tuple[str, str]]:
    """A console block's ``(command, expected output)`` pairs; a line ending in ``\\`` goes on."""
    pairs: list[tuple[str, list[str]]] = []
    lines = iter(code.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command += "\n" + next(lines, "")
            pairs.append((command, []))
        elif pairs:
            pairs[-1][1].append(line)
        elif line.strip():
            raise DocBlockError(f"console block: {line!r} comes before any '$ ' command")
    return [(command, "\n".join(output)) for command, output in pairs]


class _Tee(io.TextIOBase):
    def __init__(self, stream: io.TextIOBase, buffer: io.StringIO) -> None:
        self.stream, self.buffer = stream, buffer

    def write(self, text: str) -> int:
        self.buffer.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class PageRun:
    """Runs one page's blocks in order in ``directory``; :meth:`run` raises :class:`DocBlockError`."""

    path: Path
    directory: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    last_output: str = ""

    def run(self) -> int:
        """Run the page's blocks in order; the number of run blocks. Raises :class:`DocBlockError`."""
        blocks = parse(self.path.read_text(), str(self.path))
        found = problems(blocks)
        if found:
            raise DocBlockError("\n".join(found))
        ran = 0
        for block in blocks:
            if block.kind == "file":
                target = self.directory / block.argument
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.code)
            elif block.kind == "output":
                missing = output_matches(block.code, self.last_output)
                if missing:
                    raise DocBlockError(f"{block.where}: {missing}; the block before printed:\n{self.last_output}")
            elif block.kind == "run":
                print(f"--- {block.where} ({block.language})", flush=True)
                self._run(block)
                ran += 1
        return ran

    def _run(self, block: Block) -> None:
        timeout = float(block.options.get("timeout", 600))
        exit_code = int(block.options.get("exit", 0))
        if block.language == "python":
            self.last_output = self._python(block)
        elif block.language == "console":
            commands = console_commands(block.code)
            if not commands:
                raise DocBlockError(f"{block.where}: a console block with no '$ ' command")
            self.last_output = ""
            for number, (command, expected) in enumerate(commands, 1):
                want = exit_code if number == len(commands) else 0
                output = self._shell(block, command, want, timeout)
                missing = output_matches(expected, output)
                if missing:
                    raise DocBlockError(f"{block.where}: $ {command}: {missing}; it printed:\n{output}")
                self.last_output += output
        else:
            self.last_output = self._shell(block, block.code, exit_code, timeout)

    def _python(self, block: Block) -> str:
        captured = io.StringIO()
        try:
            code = compile("\n" * (block.line) + block.code, str(block.path), "exec")
            with contextlib.redirect_stdout(_Tee(sys.stdout, captured)), \
                    contextlib.redirect_stderr(_Tee(sys.stderr, captured)):
                exec(code, self.namespace)
        except BaseException as error:  # noqa: BLE001 - any failure of the block is the page's failure
            raise DocBlockError(f"{block.where}: the python block raised {type(error).__name__}: {error}\n"
                                + "".join(traceback.format_exception(error)[-6:])) from error
        return captured.getvalue()

    def _shell(self, block: Block, command: str, exit_code: int, timeout: float) -> str:
        try:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=self.directory,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise DocBlockError(f"{block.where}: did not end within {timeout:g} s: {command.strip()}") from error
        output = done.stdout      # stderr merged in, in the order it was printed
        sys.stdout.write(output)
        if done.returncode != exit_code:
            raise DocBlockError(f"{block.where}: exit {done.returncode}, expected {exit_code}: {command.strip()}\n"
                                f"{output[-3000:]}")
        return output


def page_environment(directory: Path, root: Path) -> None:
    """Make this process ready to run a page: its directory with a copy of ``examples/``, the
    interpreter's ``bin`` first on PATH, the directory current and importable."""
    if (root / "examples").is_dir() and not (directory / "examples").exists():
        shutil.copytree(root / "examples", directory / "examples",
                        ignore=shutil.ignore_patterns("__pycache__", "aid2e_jobs", "campaigns"))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.chdir(directory)
    sys.path.insert(0, str(directory))


def iter_pages(root: Path) -> Iterator[Path]:
    """The pages whose blocks the tests run: the README, every page under docs/, and the READMEs of
    the core, the plugins and the examples."""
    yield root / "README.md"
    yield from sorted((root / "docs").rglob("*.md"))
    for folder in ("core", "plugins", "examples"):
        yield from sorted(p for p in (root / folder).rglob("README.md") if "node_modules" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m aid2e.testing.docblocks PAGE.md [DIR]``: run one page; ``--list PAGE.md ...``: its blocks."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--list"]:
        for page in args[1:]:
            for block in parse(Path(page).read_text(), page):
                print(f"{block.where}\t{block.language or '-'}\t{block.kind or 'UNMARKED'}\t{block.argument}")
        return 0
    if not 1 <= len(args) <= 2:
        print("usage: python -m aid2e.testing.docblocks PAGE.md [DIR] | --list PAGE.md ...", file=sys.stderr)
        return 2
    page = Path(args[0]).resolve()
    directory = Path(args[1]).resolve() if len(args) == 2 else Path(tempfile.mkdtemp(prefix="aid2e-docs-"))
    directory.mkdir(parents=True, exist_ok=True)
    root = Path(os.environ.get("AID2E_DOCS_ROOT", _repository_of(page)))
    page_environment(directory, root)
    try:
        ran = PageRun(page, directory).run()
    except DocBlockError as error:
        print(f"FAILED {error}", file=sys.stderr)
        return 1
    print(f"--- {page}: {ran} blocks ran in {directory}")
    return 0


def _repository_of(page: Path) -> Path:
    for parent in page.parents:
        if (parent / "examples").is_dir() and (parent / "README.md").is_file():
            return parent
    return page.parent


if __name__ == "__main__":
    sys.exit(main())
