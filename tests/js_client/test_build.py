"""The committed client files are what ``js/build.sh`` makes from ``js/client``.

Rebuilt into a temporary folder with the esbuild of ``js/package-lock.json``
(``npm ci`` in ``js/`` when it is not installed yet); skipped without Node.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "socketwire" / "static"
FILES = [
    "socket.io.js",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
    "socket.io.d.ts",
]
# The size budget of a minified file, compressed with gzip -9 (the msgpack
# build carries a msgpack codec besides: 1.5 KB more).
GZIP_BUDGET = {
    "socket.io.min.js": 7 * 1024,
    "socket.io.esm.min.js": 7 * 1024,
    "socket.io.msgpack.min.js": 8704,
}


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node is not installed"
)
def test_committed_build_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(["bash", str(ROOT / "js" / "build.sh"), str(tmp_path)], check=True, timeout=120)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"src/socketwire/static/{name} is stale: run js/build.sh"
        )


def test_packaged_files_and_sizes() -> None:
    assert sorted(p.name for p in STATIC.iterdir()) == sorted(FILES)
    for name, budget in GZIP_BUDGET.items():
        size = len(gzip.compress((STATIC / name).read_bytes(), 9))
        assert size <= budget, f"{name}: {size} bytes gzipped"
