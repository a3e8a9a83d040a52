"""The PostgreSQL server restarts while a red warning goes out from two ``jiaoying serve``: each instance
recovers by itself (``/readyz`` back to 200, its scheduler ticking again, one leader again) and every
callee's first message still reaches the provider — nothing is lost.

The restart affects every database on the server, so it is done once, quickly, and only here.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.database import make_engine, make_session_factory, session_scope
from responses.callouts.models import Attempt, Callout
from responses.messaging.models import OutboxMessage
from tests.faults.cluster import (
    accepted_by_message,
    fake_gateway,
    pg_cluster,
    prepare,
    push_red,
    start_nodes,
    stop_nodes,
    the_leader,
)
from tests.faults.fresh_pg import fresh_database
from tests.live import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

CONCURRENCY = 4
LEASE = 120.0  # the sender's claim lease: a claim whose result was lost with the connection is retaken after it


def _restart_postgres() -> None:
    cluster = pg_cluster()
    if cluster is None or shutil.which("pg_ctlcluster") is None:
        pytest.skip("no local PostgreSQL cluster that pg_ctlcluster can restart")
    version, name = cluster
    done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_postgres_restart_mid_fanout(tmp_path: Path) -> None:
    with fresh_database("jy_fault_pgrestart") as url:
        prepare(url)
        server = fake_gateway()
        engine = make_engine(url)
        factory = make_session_factory(engine)
        nodes = start_nodes(tmp_path, url, server.url, 2, JIAOYING_TWILIO__SENDER_CONCURRENCY=str(CONCURRENCY),
                            JIAOYING_TWILIO__MESSAGES_PER_SECOND="10")
        try:
            the_leader(nodes)
            push_red(nodes[0], "fault-pg")
            wait_for("the fan-out under way", lambda: len(accepted_by_message(server)) >= 20, timeout=60)

            before = len(accepted_by_message(server))
            t0 = time.monotonic()
            restarted_at = dt.datetime.now(dt.UTC)
            _restart_postgres()
            down_for = time.monotonic() - t0

            def recovered() -> bool:
                for node in nodes:
                    tick = node.last_tick()
                    if tick is None or tick <= restarted_at + dt.timedelta(seconds=down_for):
                        return False
                return True

            wait_for("every instance ready and ticking again", recovered, timeout=60)
            recovery = time.monotonic() - t0
            leader = the_leader(nodes, timeout=30)
            lead_again = time.monotonic() - t0

            def callees_and_pending() -> tuple[int, int, set[int]]:
                with session_scope(factory) as s:
                    firsts = set(s.execute(
                        select(Attempt.message_id).join(Callout, Callout.id == Attempt.callout_id)
                        .where(Attempt.seq == 1, Callout.reason == "plan")).scalars())
                    pending = s.execute(select(func.count()).select_from(OutboxMessage).where(
                        OutboxMessage.id.in_(list(firsts)), OutboxMessage.state.in_(("queued", "claimed")))
                    ).scalar_one()
                    total = s.execute(select(func.count()).select_from(Callout)
                                      .where(Callout.reason == "plan")).scalar_one()
                return int(total), int(pending), firsts

            wait_for("every first message sent", lambda: (lambda t, p, f: t and p == 0 and len(f) == t)(
                *callees_and_pending()), timeout=LEASE + 90)
            total, _pending, firsts = callees_and_pending()
            seen = accepted_by_message(server)
            missing = [m for m in firsts if seen[m] == 0]
            twice = sum(1 for m in firsts if seen[m] > 1)
            print(f"\npostgres restart ({down_for:.1f} s) after {before} first messages: instances ready and "
                  f"ticking again {recovery:.1f} s after the restart began, a leader ({leader.name}) after "
                  f"{lead_again:.1f} s; {total} callees, none lost, {twice} sent twice")
            assert all(node.proc.poll() is None for node in nodes), "an instance died with the database"
            assert not missing, f"{len(missing)} callees never reached"
            assert twice <= 2 * CONCURRENCY  # only what each instance's sender had in flight when the link broke
            assert recovery <= 60
        finally:
            stop_nodes(nodes)
            server.stop()
            engine.dispose()
