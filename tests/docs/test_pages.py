"""The code of the documentation runs, and prints what the page says it prints.

A page marks a ```python block to run with the HTML comment ``<!-- run -->`` on the
line before it (invisible on the site). The block is a whole program: it starts a
socketwire server on 127.0.0.1 port 0, drives it (usually with socketwire's own
``Client``) and prints what happened. The first ```text block after it that is
marked ``<!-- output -->``, before the next block to run, is what it must print,
line for line.

``<!-- run: redis -->`` marks a block that needs a Redis server: it runs against
a ``redis-server`` of its own, whose URL it reads from ``$REDIS_URL`` (skipped
when ``redis-server`` is not installed).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_MARK = re.compile(r"^<!-- (run|output)(?::\s*([a-z, ]*?))?\s*-->$")


@dataclass
class Block:
    page: str
    line: int
    code: str
    flags: frozenset[str]
    output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _fence(lines: list[str], start: int, lang: str) -> tuple[str, int]:
    """The body of the fenced block that opens on ``lines[start]``, and the line after it."""
    opening = lines[start].strip()
    assert opening.startswith("```" + lang), f"line {start + 1}: expected a ```{lang} block"
    end = start + 1
    while lines[end].strip() != "```":
        end += 1
    return "\n".join(lines[start + 1 : end]) + "\n", end + 1


def page_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(DOCS).as_posix()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        mark = _MARK.match(lines[i].strip())
        if mark is None:
            i += 1
            continue
        kind, flags = mark.group(1), mark.group(2) or ""
        if kind == "run":
            code, i = _fence(lines, i + 1, "python")
            names = frozenset(f.strip() for f in flags.split(",") if f.strip())
            blocks.append(Block(page, i, code, names))
        else:
            assert blocks and blocks[-1].output is None, f"{page}:{i + 1}: output of no block"
            blocks[-1].output, i = _fence(lines, i + 1, "text")
    return blocks


def all_blocks() -> list[Block]:
    return [b for path in sorted(DOCS.rglob("*.md")) for b in page_blocks(path)]


BLOCKS = all_blocks()


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/bootstrap.sh --with-npm installs it)")
    from tests.cluster.conftest import RedisServer

    server = RedisServer()
    server.start()
    monkeypatch.setenv("REDIS_URL", server.url)
    try:
        yield
    finally:
        server.stop()


def test_pages_have_blocks_to_run() -> None:
    # the parser finds the blocks: a page format change must not make the test vacuous
    pages = {b.page for b in BLOCKS}
    assert "install.md" in pages and "guide/events.md" in pages
    assert len(BLOCKS) >= 20


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs(block: Block, request: pytest.FixtureRequest) -> None:
    if "redis" in block.flags:
        request.getfixturevalue("redis_url")
    out = io.StringIO()
    program = compile(block.code, block.id, "exec")
    with contextlib.redirect_stdout(out):
        # Each block ends in asyncio.run(main()): a loop of its own, closed after.
        exec(program, {"__name__": "__main__"})
    if block.output is not None:
        assert out.getvalue() == block.output, f"{block.id} printed:\n{out.getvalue()}"
