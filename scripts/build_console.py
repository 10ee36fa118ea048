"""Build the browser console from web/ into the server package, or check the committed build.

    python scripts/build_console.py           # web/src/gen from proto/, then the bundle
    python scripts/build_console.py --check   # exit 1 if either differs from a fresh build

Needs Node and `npm ci --prefix web` (the pinned protoc-gen-es, esbuild and
TypeScript of web/package-lock.json); `pip install` of the server does not: the
bundle is committed under server/tunixrt_server/console/, like the Python stubs.
protoc is grpcio-tools', as for the Python stubs.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gen_protos import ROOT, _include_dirs, _protos

WEB = ROOT / "web"
GEN = WEB / "src" / "gen"
CONSOLE = ROOT / "server" / "tunixrt_server" / "console"
BUNDLE = "console.js"
# Imported by the contract (field_behavior) or read by the console (error details).
GOOGLE_PROTOS = ("google/api/field_behavior.proto", "google/rpc/error_details.proto")


def generate(out: Path) -> None:
    plugin = WEB / "node_modules" / ".bin" / "protoc-gen-es"
    if not plugin.exists():
        sys.exit(f"{plugin} is missing: run `npm ci --prefix web` first")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"-I{d}" for d in _include_dirs()),
            f"--plugin=protoc-gen-es={plugin}",
            f"--es_out={out}",
            "--es_opt=target=ts,import_extension=none",
            *(str(p.relative_to(ROOT / "proto")) for p in _protos()),
            *GOOGLE_PROTOS,
        ],
        check=True,
        cwd=ROOT / "proto",
    )


def bundle(gen: Path, out: Path) -> None:
    """esbuild, with web/src/gen pointed at `gen` (a fresh generation when checking)."""
    out.mkdir(parents=True, exist_ok=True)
    source = Path(tempfile.mkdtemp(prefix="console-src-"))
    try:
        shutil.copytree(WEB / "src", source / "src", ignore=shutil.ignore_patterns("gen"))
        shutil.copytree(gen, source / "src" / "gen")
        (source / "node_modules").symlink_to(WEB / "node_modules")
        subprocess.run(
            [
                str(WEB / "node_modules" / ".bin" / "esbuild"),
                str(source / "src" / "main.ts"),
                "--bundle",
                "--minify",
                "--format=esm",
                "--target=es2022",
                "--legal-comments=none",
                f"--outfile={out / BUNDLE}",
            ],
            check=True,
            cwd=source,
        )
    finally:
        shutil.rmtree(source, ignore_errors=True)


def typecheck() -> None:
    subprocess.run([str(WEB / "node_modules" / ".bin" / "tsc"), "--noEmit"], check=True, cwd=WEB)


def _same_tree(a: Path, b: Path) -> list[str]:
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names |= {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    return sorted(
        str(n)
        for n in names
        if not ((a / n).exists() and (b / n).exists() and filecmp.cmp(a / n, b / n, shallow=False))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(GEN, ignore_errors=True)
        generate(GEN)
        typecheck()
        bundle(GEN, CONSOLE)
        print(f"wrote {GEN.relative_to(ROOT)} and {(CONSOLE / BUNDLE).relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        gen, out = Path(tmp) / "gen", Path(tmp) / "console"
        generate(gen)
        bundle(gen, out)
        stale = _same_tree(gen, GEN) + (
            [BUNDLE] if not filecmp.cmp(out / BUNDLE, CONSOLE / BUNDLE, shallow=False) else []
        )
    if stale:
        sys.exit(f"the committed console is stale: {stale}; run scripts/build_console.py")
    print("committed console is up to date")


if __name__ == "__main__":
    main()
