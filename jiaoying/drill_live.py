"""``jiaoying demo --live``: the bundled drill on an accelerated clock, with the API served alongside,
so a newcomer can watch warnings, runs and callouts move (one virtual minute per real second by default)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

from rich.console import Console

from config.database import session_scope

out = Console()


class AcceleratedClock:
    """Virtual time that runs ``speed`` times faster than the wall clock, from ``start``."""

    def __init__(self, start: dt.datetime, speed: float) -> None:
        self.start, self.speed = start.astimezone(dt.UTC), speed
        self._t0 = time.monotonic()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


def serve_live(scenario_path: Path, out_dir: Path, *, speed: float, port: int) -> None:
    import uvicorn

    from jiaoying.app import create_app
    from jiaoying.drill_cli import drill_jobs, drill_runtime
    from responses import engine
    from responses.audit.builder import build_report
    from responses.audit.render import write_report
    from responses.drill.runner import Players, _run_job, make_safe, prepare
    from responses.drill.scenario import load_scenario

    loaded = load_scenario(scenario_path)
    s = loaded.scenario
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = AcceleratedClock(s.start, speed)
    rt = drill_runtime(out_dir / "drill-live.sqlite3", s.start, clock=clock)
    make_safe(rt, s)
    engine.install(rt.state)
    with session_scope(rt.session_factory) as session:
        prepare(session, loaded, now=clock.now(), tz=rt.settings.tz)
    players = Players(loaded, rt)
    jobs = drill_jobs(rt)
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            now = clock.now()
            players.act(min(now, s.end))
            for job in jobs:
                _run_job(rt, job)
            if now >= s.end:
                with session_scope(rt.session_factory) as session:
                    report = build_report(session, now=s.end, tz=rt.settings.tz, drill=True,
                                          title=f"{s.name} 时效审计报告")
                paths = write_report(report, out_dir)
                out.print(f"[green]演练结束，报告 / report:[/] {paths['html']}")
                return
            stop.wait(0.5)

    thread = threading.Thread(target=drive, name="drill-live", daemon=True)
    thread.start()
    out.print(f"[green]实时演示[/]：{s.name}，时钟加速 {speed:g} 倍 / live demo, clock ×{speed:g} — "
              f"http://127.0.0.1:{port}/docs（Ctrl+C 退出 / to stop）")
    try:
        uvicorn.run(create_app(rt.settings, runtime=rt, scheduler=False), host="127.0.0.1", port=port,
                    log_level="warning")
    finally:
        stop.set()
        thread.join(timeout=10)
        rt.close()
