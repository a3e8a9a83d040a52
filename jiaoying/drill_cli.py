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


@drill_app.command("from-run")
def drill_from_run(
    run_id: Annotated[int, typer.Argument(help="响应编号（id）/ run id")],
    out_dir: Annotated[Path, typer.Option("--out", help="演练脚本输出目录 / output folder")] = Path("replay"),
    database: Annotated[str | None, typer.Option(
        "--database", help="读取的数据库（默认为配置中的数据库），如 sqlite:///demo-out/drill.sqlite3 / the "
                           "database to read (default: the configured one)")] = None,
) -> None:
    """把一次真实响应写成可重放的演练脚本 / Write a scenario that replays a real run (``drill run`` it)."""
    from config.clock import SystemClock
    from responses.drill.replay import ReplayError, build_replay

    settings = load_settings()
    engine = make_engine(database or settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            replay = build_replay(s, run_id, now=SystemClock().now(), tz=settings.tz)
    except ReplayError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "scenario.yaml").is_file():
        raise fail(f"输出目录 {out_dir} 非空且不是复盘目录 / {out_dir} is not empty and holds no scenario.yaml")
    paths = replay.write(out_dir)
    info = replay.summary
    out.print(f"[green]已写出响应 {replay.run_number} 的复盘演练脚本[/] / replay of run {replay.run_number} written: "
              f"[bold]{out_dir / 'scenario.yaml'}[/]（{len(paths)} 个文件 / files）", soft_wrap=True)
    out.print(f"  {info['start']} → {info['end']}，输入 {len(info['inputs'])} 条 / inputs，"
              f"叫应 {info['kpis']['callouts']} 人次 / callouts", soft_wrap=True)
    for zh, en in replay.gaps:
        err.print(f"[bold yellow]未能复现 / not reproduced[/]：{zh} / {en}", soft_wrap=True)
    out.print(f"运行 / run: [bold]jiaoying drill run {out_dir / 'scenario.yaml'} --out {out_dir / 'report'}[/]",
              soft_wrap=True)


def _read_report(path: Path, label: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(f"找不到报告 {label}：{path} / report {label} not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"报告 {label} 不是有效的 JSON：{path}（{exc}）/ report {label} is not valid JSON: {path}") from None
    if not isinstance(data, dict):
        raise fail(f"报告 {label} 不是时效审计报告：{path} / report {label} is not an audit report: {path}")
    return data


def _compare_table(title: str, rows: list[dict[str, Any]]) -> Table:
    from responses.drill.compare import NEUTRAL, WORSE_WHEN_UP, diff_text, figure_text

    table = Table(title=title)
    table.add_column("指标 / figure")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("差值 B−A / diff", justify="right")
    for r in rows:
        d = r["diff"]
        style = "" if not d or r["key"] in NEUTRAL else ("red" if (d > 0) == (r["key"] in WORSE_WHEN_UP) else "green")
        text = diff_text(r["key"], d)
        table.add_row(f"{r['zh']}  [dim]{r['en']}[/]", figure_text(r["key"], r["a"]), figure_text(r["key"], r["b"]),
                      f"[{style}]{text}[/]" if style else text)
    return table


@drill_app.command("compare")
def drill_compare(
    a: Annotated[Path, typer.Argument(help="基准报告 A（report.json）/ baseline report A")],
    b: Annotated[Path, typer.Argument(help="对比报告 B（report.json）/ report B to compare")],
    as_json: Annotated[bool, typer.Option("--json", help="输出机器可读的对比结果 / print the comparison as JSON")]
    = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="写出含两条时间线的 HTML 对比页 / write an HTML page "
                                                              "with both timelines")] = None,
) -> None:
    """并排比较两份时效审计报告的关键指标（总体与分乡镇）/ Compare two audit reports' KPIs, overall and per
    township; the difference is B − A."""
    import json

    from responses.drill.compare import CompareError, compare, compare_html

    ra, rb = _read_report(a, "A"), _read_report(b, "B")
    try:
        result = compare(ra, rb)
    except CompareError as exc:
        raise fail(str(exc)) from None
    page = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / "compare.html"
        page.write_text(compare_html(result, ra, rb), encoding="utf-8")
        (out_dir / "compare.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    out.print(f"A：{result['a']['title']}  [dim]{a}[/]")
    out.print(f"B：{result['b']['title']}  [dim]{b}[/]")
    out.print(_compare_table("关键指标对比 / KPIs compared", result["kpis"]))
    for t in result["townships"]:
        if any(r["diff"] for r in t["figures"]):
            out.print(_compare_table(f"{t['name']}（{t['township']}）", t["figures"]))
    unchanged = [t["name"] for t in result["townships"] if not any(r["diff"] for r in t["figures"])]
    if unchanged:
        out.print(f"[dim]无变化的乡镇（街道）/ townships unchanged：{'、'.join(map(str, unchanged))}[/]")
    out.print("[bold]变化 / what changed[/]" if result["summary"] else "关键指标无变化 / no headline figure changed")
    for s in result["summary"]:
        out.print(f"  · {s['zh']}\n    [dim]{s['en']}[/]", soft_wrap=True)
    if page is not None:
        out.print(f"对比页 / page: [bold]{page}[/]")


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


def _library_table() -> Table:
    from responses.drill.library import ScenarioError, duration_text, list_scenarios
    from warning.draft import HAZARD_ZH, Hazard

    table = Table(title="演练库 / drill library")
    table.add_column("名称 / name", style="bold")
    table.add_column("演练 / title")
    table.add_column("灾种 / hazard")
    table.add_column("时长 / duration", justify="right")
    for entry in list_scenarios():
        name = f"{entry.name}  [dim](默认 / default)[/]" if entry.bundled_demo else entry.name
        try:
            hazards = "、".join(f"{HAZARD_ZH.get(Hazard(h), h)} [dim]{h}[/]" if h in set(Hazard) else h
                               for h in entry.hazards) or "—"
            table.add_row(name, entry.title, hazards, duration_text(entry.duration))
        except ScenarioError as exc:
            table.add_row(name, f"[red]演练脚本有误 / bad scenario file[/] {exc.problems[0]}", "—", "—")
    return table


def demo_cmd(
    name: Annotated[str | None, typer.Argument(help="演练库中的演练名称（见 --list）/ a drill of the library "
                                                  "(see --list)", show_default=False)] = None,
    list_: Annotated[bool, typer.Option("--list", help="列出内置演练 / list the bundled drills")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="报告输出目录 / output folder")] = Path("demo-out"),
    live: Annotated[bool, typer.Option("--live", help="以加速时钟运行并提供 API / serve it on an accelerated clock")]
    = False,
    speed: Annotated[float, typer.Option(help="--live 时的加速倍数 / clock speed-up for --live", min=1.0)] = 60.0,
    port: Annotated[int, typer.Option(help="--live 的端口 / port for --live", min=1, max=65535)] = 8000,
) -> None:
    """运行内置演练（默认：城区暴雨红色预警）/ Run a bundled drill (default: a red rainstorm over part of 城区).

    `jiaoying demo --list` 列出演练库；`jiaoying demo NAME` 运行其中一个。
    `jiaoying demo --list` lists the library; `jiaoying demo NAME` runs one of it.
    """
    from responses.drill import library

    if list_:
        out.print(_library_table())
        out.print("运行 / run: [bold]jiaoying demo NAME[/]（如 / e.g. jiaoying demo earthquake）")
        return
    scenario = DEMO_SCENARIO
    if name is not None:
        entry = library.find(name)
        if entry is None:
            known = ", ".join(library.names())
            raise fail(f"没有名为 {name!r} 的演练；可选：{known} / no drill named {name!r}; choose one of: {known}")
        scenario = entry.path
    if live:
        from jiaoying.drill_live import serve_live

        serve_live(scenario, out_dir, speed=speed, port=port)
        return
    result = run_scenario(scenario, out_dir)
    out.print(_kpi_table(result.report))
    out.print(f"[green]演示完成[/]（虚拟 {result.report['scenario']['duration_s'] / 3600:g} 小时，用时 "
              f"{result.elapsed_s:.1f} 秒）。打开报告 / open the report: [bold]{result.paths['html']}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
    app.command("report")(report_cmd)
    app.command("demo")(demo_cmd)
