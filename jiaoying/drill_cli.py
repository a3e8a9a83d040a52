"""The drill, report and demo commands: ``jiaoying drill run``, ``jiaoying report``, ``jiaoying demo``.

This is where the drill runner (in ``responses``) meets the scheduler's jobs and the migrations
(here, in the composition root): a drill gets a fresh database of its own beside its report, so its
records never mix with real ones and the same scenario always gives the same report.

A drill that starts no response still exits 0 with its report: that outcome is what the drill
found, and the report's findings say why. Only a scenario that cannot be run exits non-zero.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings, load_settings
from jiaoying.cli_common import err, fail, out
from jiaoying.drill_setup import drill_jobs, drill_runtime

drill_app = typer.Typer(help="演练 / drills", no_args_is_help=True)

DEMO_SCENARIO = Path(__file__).resolve().parents[1] / "config" / "defaults" / "drills" / "red-rainstorm.yaml"


def _kpi_table(report: dict[str, Any]) -> Table:
    from responses.audit.render import kpi_display
    from responses.audit.shape import KPI_KEYS, KPI_ZH

    table = Table(title=f"{report['title']}（关键指标 / KPIs）")
    table.add_column("指标 / KPI")
    table.add_column("数值 / value", justify="right")
    for key in KPI_KEYS:
        table.add_row(f"{KPI_ZH[key]}  [dim]{key}[/]", kpi_display(key, report["kpis"].get(key)))
    return table


def _print_findings(report: dict[str, Any]) -> None:
    """Why nothing started, before the figures: an empty KPI table alone reads like a failure."""
    for f in report.get("findings") or []:
        out.print(f"[bold yellow]结论 / finding[/] [dim]{f['code']}[/]：{f['message']}", soft_wrap=True)
        out.print(f"  {f['message_en']}", soft_wrap=True, style="dim")


def run_scenario(path: Path, out_dir: Path, *, settings: Settings | None = None, quiet: bool = False) -> Any:
    from responses.drill.runner import DrillError, run_drill
    from responses.drill.scenario import ScenarioError, load_scenario

    try:
        loaded = load_scenario(path)
    except ScenarioError as exc:
        raise fail(f"演练脚本有误 / bad scenario file\n{exc}") from None
    s = loaded.scenario
    out_dir.mkdir(parents=True, exist_ok=True)
    rt = drill_runtime(out_dir / "drill.sqlite3", s.start, settings)
    total = s.duration.total_seconds() or 1.0
    try:
        with Progress(TextColumn("[bold]演练 / drill[/] {task.description}"), BarColumn(),
                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=err, disable=quiet,
                      transient=True) as bar:
            task = bar.add_task(s.name, total=total)

            def progress(now: dt.datetime, _msg: str) -> None:
                bar.update(task, completed=(now - s.start).total_seconds(),
                           description=f"{s.name} {now.astimezone(rt.settings.tz):%H:%M}")

            result = run_drill(loaded, rt, drill_jobs(rt), out_dir=out_dir, progress=progress)
    except DrillError as exc:
        raise fail(str(exc)) from None
    finally:
        rt.close()
    for stale in result.expired_inputs:
        zh, en = stale.text(rt.settings.tz)
        err.print(f"[bold yellow]警告：[/]{zh}。/ [bold yellow]Warning:[/] {en}.", soft_wrap=True)
    return result


@drill_app.command("run")
def drill_run(
    scenario: Annotated[Path, typer.Argument(help="演练脚本 YAML / scenario file")],
    out_dir: Annotated[Path, typer.Option("--out", help="报告输出目录 / output folder")] = Path("drill-out"),
) -> None:
    """在虚拟时钟上运行演练并生成时效审计报告 / Run a drill on a virtual clock and write its report."""
    result = run_scenario(scenario, out_dir)
    _print_findings(result.report)
    out.print(_kpi_table(result.report))
    out.print(f"[green]演练完成[/]：{result.steps} 步，用时 {result.elapsed_s:.1f} 秒，"
              f"模拟发送 {result.messages_sent} 条 / drill done: {result.steps} steps, {result.elapsed_s:.1f} s, "
              f"{result.messages_sent} simulated sends")
    for kind, p in result.paths.items():
        out.print(f"  {kind}: {p}")


def report_cmd(
    run_id: Annotated[int, typer.Argument(help="响应编号 / run id")],
    out_dir: Annotated[Path, typer.Option("--out", help="报告输出目录 / output folder")] = Path("report-out"),
) -> None:
    """生成一次响应的时效审计报告 / Write the timeliness audit report of one run."""
    from config.clock import SystemClock
    from responses.audit.builder import ReportScopeError, build_report
    from responses.audit.render import write_report

    settings = load_settings()
    engine = make_engine(settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            report = build_report(s, now=SystemClock().now(), tz=settings.tz, run_ids=[run_id])
    except ReportScopeError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    paths = write_report(report, out_dir)
    out.print(_kpi_table(report))
    for kind, p in paths.items():
        out.print(f"  {kind}: {p}")


def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="报告输出目录 / output folder")] = Path("demo-out"),
    live: Annotated[bool, typer.Option("--live", help="以加速时钟运行并提供 API / serve it on an accelerated clock")]
    = False,
    speed: Annotated[float, typer.Option(help="--live 时的加速倍数 / clock speed-up for --live", min=1.0)] = 60.0,
    port: Annotated[int, typer.Option(help="--live 的端口 / port for --live", min=1, max=65535)] = 8000,
) -> None:
    """运行内置演练（城区暴雨红色预警）/ Run the bundled drill: a red rainstorm over part of 城区."""
    if live:
        from jiaoying.drill_live import serve_live

        serve_live(DEMO_SCENARIO, out_dir, speed=speed, port=port)
        return
    result = run_scenario(DEMO_SCENARIO, out_dir)
    out.print(_kpi_table(result.report))
    out.print(f"[green]演示完成[/]（虚拟 {result.report['scenario']['duration_s'] / 3600:g} 小时，用时 "
              f"{result.elapsed_s:.1f} 秒）。打开报告 / open the report: [bold]{result.paths['html']}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
    app.command("report")(report_cmd)
    app.command("demo")(demo_cmd)
