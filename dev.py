#!/usr/bin/env python3
"""Set up and run Jiaoying with nothing but Python 3.11+ and pip.

    python3 dev.py run     # create .venv, install, start the server with its scheduler on :8000
    python3 dev.py test    # create .venv, install with test extras, run ruff and the whole test suite
                           # (in parallel, then the fault tests on their own)

Extra arguments after the verb go to the command (``python3 dev.py run --port 9000``,
``python3 dev.py test -k geo``). The virtual environment is reinstalled only when
``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 the user has
        sys.exit("需要 Python 3.11 或更新版本 / Python 3.11+ is required")
    if not PY.exists():
        print("创建虚拟环境 / creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("安装依赖 / installing dependencies …", flush=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", target], cwd=ROOT, check=True)
    stamp.write_text(digest)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print(__doc__)
        return 2
    verb, rest = sys.argv[1], sys.argv[2:]
    if verb == "run":
        ensure_env("")
        return subprocess.call([str(BIN / "jiaoying"), "serve", *rest], cwd=ROOT)
    ensure_env("test")
    lint = subprocess.call([str(BIN / "ruff"), "check", "."], cwd=ROOT)
    if lint:
        print("ruff 检查未通过 / ruff found problems", file=sys.stderr)
        return lint
    if rest:
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    # The whole suite: most of it in parallel, a file per worker at a time (its fixtures set up once); then the
    # fault tests (instances killed, the PostgreSQL server restarted) alone, so a restarted server never meets
    # another test's open connections.
    workers = str(max(2, min(4, os.cpu_count() or 2)))
    main_part = subprocess.call([str(PY), "-m", "pytest", "-m", "not faults", "-n", workers, "--dist", "loadfile"],
                                cwd=ROOT)
    faults = subprocess.call([str(PY), "-m", "pytest", "tests/faults", "-m", "faults"], cwd=ROOT)
    return main_part or faults


if __name__ == "__main__":
    sys.exit(main())
