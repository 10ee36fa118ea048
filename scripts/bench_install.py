"""Install size and time by role: the client alone vs. the client, server and trainer.

    python scripts/bench_install.py

Each install goes into a fresh virtualenv (non-editable, pip's download cache as
it is: a warm cache measures unpacking and building, not the network). Size is
what the install added to site-packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLES = {
    "client (tunix-rt)": ["{client}"],
    "client + monitor extra": ["{client}[monitor]"],
    "server + train + postgres (everything)": ["{client}[monitor]", "{server}[train,postgres]"],
}
IGNORED = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def measure(targets: list[str], where: Path) -> tuple[float, float, int]:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    site = next(where.glob("lib/python*/site-packages"))
    before = size_mb(site)
    began = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *targets], check=True)
    seconds = time.perf_counter() - began
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    return size_mb(site) - before, seconds, len(listed.stdout.splitlines())


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # From copies: building in place would leave build/ in the checkout.
        sources = {
            name: shutil.copytree(ROOT / name, Path(tmp) / name, ignore=IGNORED)
            for name in ("client", "server")
        }
        for n, (role, targets) in enumerate(ROLES.items()):
            filled = [t.format(**sources) for t in targets]
            rows.append((role, *measure(filled, Path(tmp) / f"venv{n}")))
    whole = rows[-1]
    for role, mb, seconds, packages in rows:
        print(
            f"{role:42s} {mb:8.0f} MB  {seconds:6.1f} s  {packages:3d} packages  "
            f"({mb / whole[1]:.1%} of everything's size)"
        )


if __name__ == "__main__":
    main()
