"""Regenerate the Python stubs in client/tunixrt/v1 from proto/, or check them.

    python scripts/gen_protos.py           # write client/tunixrt/v1/*_pb2*.py(i)
    python scripts/gen_protos.py --check   # exit 1 if the committed stubs are stale
    python scripts/gen_protos.py --lint    # buf lint the contract

protoc comes from grpcio-tools, the .pyi stubs from mypy-protobuf, and the
google/api and google/rpc imports from googleapis-common-protos, so nothing
needs installing by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PACKAGE = ROOT / "client" / "tunixrt" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _include_dirs() -> list[Path]:
    import grpc_tools

    googleapis = Path(sysconfig.get_paths()["purelib"])
    return [PROTO_DIR, googleapis, Path(grpc_tools.__file__).parent / "_proto"]


def _protos() -> list[Path]:
    return sorted((PROTO_DIR / "tunixrt" / "v1").glob("*.proto"))


def generate(out_root: Path) -> None:
    bindir = Path(sys.executable).parent
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{d}" for d in _include_dirs()),
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *(str(p.relative_to(PROTO_DIR)) for p in _protos()),
    ]
    subprocess.run(args, check=True, cwd=PROTO_DIR)


def _generated(package_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in package_dir.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def write() -> None:
    for stale in _generated(OUT_PACKAGE).values():
        stale.unlink()
    generate(ROOT / "client")


def check() -> list[str]:
    """Return the names of stubs that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = _generated(Path(tmp) / "tunixrt" / "v1")
        committed = _generated(OUT_PACKAGE)
        names = sorted(set(fresh) | set(committed))
        return [
            n
            for n in names
            if n not in fresh
            or n not in committed
            or not filecmp.cmp(fresh[n], committed[n], shallow=False)
        ]


def lint() -> subprocess.CompletedProcess[str]:
    """Run `buf lint` on proto/ with google/api imports supplied from site-packages."""
    googleapis = Path(sysconfig.get_paths()["purelib"]) / "google" / "api"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(PROTO_DIR / "tunixrt", work / "proto" / "tunixrt")
        deps = work / "deps" / "google" / "api"
        deps.mkdir(parents=True)
        for name in ("field_behavior.proto",):
            shutil.copy(googleapis / name, deps / name)
        lint_config = (
            (PROTO_DIR / "buf.yaml").read_text().split("lint:", 1)[1].split("breaking:")[0]
        )
        indented = "\n".join("    " + line if line else line for line in lint_config.splitlines())
        (work / "buf.yaml").write_text(
            "version: v2\nmodules:\n  - path: proto\n    lint:" + indented + "\n  - path: deps\n"
        )
        return subprocess.run(
            [str(Path(sys.executable).parent / "buf"), "lint", "proto"],
            cwd=work,
            capture_output=True,
            text=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    mode.add_argument("--lint", action="store_true", help="buf lint the protos")
    args = parser.parse_args()
    if args.check:
        stale = check()
        if stale:
            print("stale generated stubs (run scripts/gen_protos.py):", *stale, sep="\n  ")
            return 1
        print("generated stubs are up to date")
        return 0
    if args.lint:
        result = lint()
        print(result.stdout + result.stderr, end="")
        return result.returncode
    write()
    print(f"wrote stubs to {OUT_PACKAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
