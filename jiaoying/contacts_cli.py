"""``jiaoying contacts …``: import the responsible people, and list villages nobody can be reached for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="责任人联系人 / responsible people (contacts)", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


@app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV 或 XLSX 文件（中文表头：姓名、手机、职务、村/社区代码…）")],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="跳过错误行，导入其余 / import the valid rest")]
    = False,
) -> None:
    """导入联系人；默认有错则全部不导入 / Import contacts; all or nothing unless --skip-invalid."""
    from config.clock import SystemClock
    from config.database import make_engine, make_session_factory, session_scope
    from jiaoying.cli_common import fail, settings_or_exit, upgrade_and_seed
    from responses.contacts.service import ContactFileError, import_contacts

    if not file.is_file():
        raise fail(f"文件不存在 / file not found: {file}")
    settings = settings_or_exit()
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    try:
        with out.status("校验并导入 / validating and importing …"), session_scope(make_session_factory(engine)) as s:
            report = import_contacts(s, data=file.read_bytes(), filename=file.name, actor="cli",
                                     now=SystemClock().now(), tz=settings.tz, skip_invalid=skip_invalid)
    except ContactFileError as exc:
        raise fail(f"{exc.zh} / {exc.en}") from None
    finally:
        engine.dispose()
    if report.errors:
        table = Table(title=f"问题 / problems ({len(report.errors)})")
        for col in ("行 / row", "字段 / field", "说明 / message"):
            table.add_column(col)
        for e in report.errors:
            table.add_row(str(e.row), e.field, f"{e.message}\n{e.message_en}")
        (out if report.status != "rejected" else err).print(table)
    if report.area_check != "geo":
        err.print("[yellow]注意[/]：数据库中尚无行政区划，区域代码只检查了格式 / no area register loaded: codes were "
                  "checked for form only")
    if report.status == "rejected":
        err.print(f"[bold red]未导入 / nothing imported[/]：共 {report.rows_total} 行，有效 {report.rows_ok} 行。"
                  "修正文件后重试，或加 --skip-invalid / fix the file, or pass --skip-invalid")
        raise typer.Exit(2)
    out.print(f"[green]已导入 / imported[/]：新增联系人 {report.contacts_added}，更新 {report.contacts_updated}，"
              f"新增职务 {report.duties_added}（{report.status}）")


@app.command("coverage")
def contacts_coverage() -> None:
    """列出没有可联系责任人的村（社区）/ List villages with no reachable responsible person."""
    from config.clock import SystemClock
    from config.database import make_engine, make_session_factory, session_scope
    from jiaoying.cli_common import settings_or_exit, upgrade_and_seed
    from responses.contacts.service import coverage_report

    settings = settings_or_exit()
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            rep = coverage_report(s, now=SystemClock().now()).as_dict()
    finally:
        engine.dispose()
    out.print(f"村（社区）共 {rep['villages_total']} 个 / villages: {rep['villages_total']}；"
              f"区领导 {rep['district_leaders']} 人 / district leaders")
    for key, title in (("uncovered_villages", "无可联系责任人的村（社区）/ villages nobody can be reached for"),
                       ("townships_without_chief", "无负责人的镇（街道）/ townships without a chief")):
        if rep[key]:
            table = Table(title=f"{title} ({len(rep[key])})")
            table.add_column("代码 / code")
            table.add_column("名称 / name")
            for row in rep[key]:
                table.add_row(row["code"], row["name"])
            err.print(table)
    if not rep["ok"]:
        raise typer.Exit(1)
    out.print("[green]全部覆盖 / every village is covered[/]")
