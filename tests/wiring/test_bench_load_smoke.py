"""``bench/load.py --quick`` keeps working: two instances on a fresh PostgreSQL database, a few console
clients, a few hundred callees, and the four figures printed (API latency, errors, fan-out rate,
escalation lag). The figures' targets are the benchmark's business, not this test's: it checks that
the run completes, every first message goes out, nothing errs, and escalations are measured."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.faults.fresh_pg import PG_URL, need_pg

ROOT = Path(__file__).resolve().parents[2]
BOUND_SECONDS = 360  # the answer window alone is a minute; start-up and the fan-out on a shared 2-core machine


def _databases() -> set[str]:
    eng = create_engine(PG_URL)
    try:
        with eng.connect() as c:
            return set(c.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'jy_load_%'")).scalars())
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_load_bench_quick_run_prints_the_four_figures() -> None:
    need_pg()
    before = _databases()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}, "COLUMNS": "240"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "load.py"), "--quick", "--pg", PG_URL],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=BOUND_SECONDS)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)  # the bench stops its servers and drops its database
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    assert proc.returncode == 0, output[-4000:]

    latency = re.search(r"API latency \(all client requests\): n=(\d+) median (\d+) ms, p95 (\d+) ms, max (\d+) ms",
                        output)
    assert latency and int(latency[1]) > 0, output[-4000:]
    assert int(latency[2]) <= int(latency[3]) <= int(latency[4])
    errors = re.search(r"^errors: (\d+)", output, re.M)
    assert errors and int(errors[1]) == 0, output[-4000:]
    fanout = re.search(r"fan-out: (\d+)/(\d+) first messages accepted \((\d+) expired unsent\); ([\d.]+) msg/s",
                       output)
    assert fanout and int(fanout[1]) >= 300 and float(fanout[4]) > 0, output[-4000:]
    assert int(fanout[1]) + int(fanout[3]) == int(fanout[2]), output[-4000:]  # each first message settled
    lag = re.search(r"escalation lag \(deadline → escalation committed\): n=(\d+) median ([\d.]+) s, "
                    r"p99 ([\d.]+) s, max ([\d.]+) s", output)
    assert lag and int(lag[1]) >= 300, output[-4000:]  # every village-tier callee escalates: nobody answers
    assert "targets: p95 API latency" in output
    assert _databases() == before, "the bench dropped the database it created"
