"""``jiaoying demo --live``: the bundled drill on an accelerated clock, with the API served alongside,
so a newcomer can watch warnings, runs and callouts move (one virtual minute per real second by default)."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from pathlib import Path

from rich.console import Console

from config.database import session_scope
from config.runtime import Runtime

out = Console()


class AcceleratedClock:
    """Virtual time that runs ``speed`` times faster than the wall clock, from ``start``."""

    def __init__(self, start: dt.datetime, speed: float) -> None:
        self.start, self.speed = start.astimezone(dt.UTC), speed
        self._t0 = time.monotonic()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


DEMO_USER = "demo"


def _demo_login(rt: Runtime, password: str | None) -> str:
    """A login for the watcher in the drill's own database (a throwaway one, served on localhost only)."""
    from config.users import Role, User, hash_password

    password = password or secrets.token_urlsafe(9)
    with session_scope(rt.session_factory) as session:
        session.add(User(username=DEMO_USER, display_name="演示用户 / demo", password_hash=hash_password(password),
                         role=Role.ADMIN.value, created_at=rt.now()))
    return password


def serve_live(scenario_path: Path, out_dir: Path, *, speed: float, port: int, password: str | None = None) -> None:
    import uvicorn

    from jiaoying.app import create_app
    from jiaoying.drill_setup import drill_jobs, drill_runtime
    from responses.audit.render import write_report
    from responses.drill.runner import Players, _run_job, drill_report, make_safe, prepare
    from responses.drill.scenario import load_scenario
    from responses.runs import engine

    loaded = load_scenario(scenario_path)
    s = loaded.scenario
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = AcceleratedClock(s.start, speed)
    rt = drill_runtime(out_dir / "drill-live.sqlite3", s.start, clock=clock)
    make_safe(rt, s)
    engine.install(rt.state)
    with session_scope(rt.session_factory) as session:
        prepare(session, loaded, now=clock.now(), tz=rt.settings.tz)
    password = _demo_login(rt, password)
    players = Players(loaded, rt)
    jobs = drill_jobs(rt)
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            now = clock.now()
            rt.state["last_tick"] = now  # /readyz shows the virtual time moving
            try:
                players.act(min(now, s.end))
            except Exception as exc:  # the people of the drill failing must not stop the system or the API
                out.print(f"[yellow]演练角色动作失败 / a simulated action failed:[/] {type(exc).__name__}: {exc}")
            for job in jobs:
                _run_job(rt, job)
            if now >= s.end:
                with session_scope(rt.session_factory) as session:  # made even when nothing started
                    report = drill_report(session, loaded, players, now=s.end, tz=rt.settings.tz, summary=False)
                paths = write_report(report, out_dir)
                out.print(f"[green]演练结束，报告 / report:[/] {paths['html']}")
                return
            stop.wait(0.5)

    thread = threading.Thread(target=drive, name="drill-live", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    out.print(f"[green]实时演示[/]：{s.name}，时钟加速 {speed:g} 倍 / live demo, clock ×{speed:g}", soft_wrap=True)
    out.print(f"  值班台 / duty console: {base}/  （用下面的账号登录 / log in with the account below）", soft_wrap=True)
    out.print(f"  接口文档 / API docs: {base}/docs", soft_wrap=True)
    out.print(f"  登录 / login: {DEMO_USER} {password}", soft_wrap=True)
    out.print(f"  响应列表 / runs: {base}/responses/runs   审计报告 / audit: {base}/audit/runs/1/report.html",
              soft_wrap=True)
    out.print("  Ctrl+C 退出 / to stop", soft_wrap=True)
    try:
        uvicorn.run(create_app(rt.settings, runtime=rt, scheduler=False), host="127.0.0.1", port=port,
                    log_level="warning", timeout_graceful_shutdown=3)
    finally:
        stop.set()
        thread.join(timeout=10)
        rt.close()
