"""A clone of the repository stands alone: nothing it tracks reaches outside it,
and the tests that read the corpus pass in a clone with nothing beside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# Ways a file could name a place outside the repository: the parent directory of the
# checkout (where CI happens to keep a `shared/` folder), or one machine's own paths.
OUTSIDE = re.compile(
    r"\.\./shared\b"  # ../shared/corpus, as the tests once read it
    r"|\.parent\s*/\s*[\"']shared[\"']"  # ROOT.parent / "shared"
    r"|ROOT\.parent\b"  # anything beside the checkout
    r"|\.parents\[[2-9]\]\s*/\s*[\"']shared"
    r"|/work/(?:main|shared)\b"  # this project's own machines
)
# The checker itself must spell the patterns.
SELF = Path(__file__).relative_to(ROOT).as_posix()


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    return [name for name in out.stdout.decode().split("\0") if name and name != SELF]


def references_outside(names: list[str], root: Path) -> list[str]:
    found = []
    for name in names:
        path = root / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository() -> None:
    assert references_outside(tracked_files(), ROOT) == []


def test_the_check_above_can_fail(tmp_path: Path) -> None:
    for n, text in enumerate(
        [
            'CORPUS = ROOT.parent / "shared" / "corpus"\n',
            "tunix-rt traces import ../shared/corpus/dev-reasoning-v2.jsonl\n",
            "data = ROOT.parent / 'elsewhere'\n",
        ]
    ):
        (tmp_path / f"f{n}.py").write_text(text)
    assert len(references_outside(["f0.py", "f1.py", "f2.py"], tmp_path)) == 3


def test_a_clone_alone_passes_the_tests_that_read_the_corpus(tmp_path: Path) -> None:
    """`git clone` of this repository into an empty directory (no ../shared beside
    it), then the corpus tests run there, on the clone's own code and files."""
    clone = tmp_path / "empty" / "tunix-rt"
    clone.parent.mkdir()
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        timeout=120,
    )
    assert not (clone.parent / "shared").exists()
    env = {
        **os.environ,
        # The clone's own packages ahead of the editable install of this checkout.
        "PYTHONPATH": os.pathsep.join([str(clone / "client"), str(clone / "server")]),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_corpus.py",
            "tests/test_clone.py::test_no_tracked_file_refers_to_a_path_outside_the_repository",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"\b3 passed\b", out.stdout), out.stdout[-2000:]
