"""``jiaoying geo …``: import areas and hazard sites, test a warning area against the region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="区域与隐患点 / areas and hazard sites", no_args_is_help=True)
import_app = typer.Typer(help="导入 / import", no_args_is_help=True)
app.add_typer(import_app, name="import")

out = Console()
err = Console(stderr=True)


def _run(kind: str, path: Path, fmt: str | None, crs: str | None, skip_invalid: bool, accept_repaired: bool) -> None:
    from config.clock import SystemClock
    from config.database import make_engine, make_session_factory
    from geo.crs import CRS_NAMES, normalize_crs
    from geo.region import run_import
    from jiaoying.cli_common import fail, settings_or_exit, upgrade_and_seed

    if not path.is_file():
        raise fail(f"文件不存在 / file not found: {path}")
    if crs is not None and normalize_crs(crs) is None:
        raise fail(f"未知坐标系 / unknown CRS {crs!r}；可选 / choose: {', '.join(CRS_NAMES)}")
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "geojson")
    if fmt not in ("geojson", "csv") or (kind == "sites" and fmt == "csv"):
        raise fail(f"不支持的格式 / unsupported format {fmt!r}（区域 / areas: geojson, csv；隐患点 / sites: geojson）")
    settings = settings_or_exit()
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    session = make_session_factory(engine)()
    try:
        with out.status("校验并导入 / validating and importing …"):
            report = run_import(session, kind, fmt, path.read_bytes(), now=SystemClock().now(), actor="cli",
                                source=f"file:{path.name}", crs=crs, skip_invalid=skip_invalid,
                                accept_repaired=accept_repaired)
        if report.applied:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
        engine.dispose()
    if report.problems:
        table = Table(title=f"问题 / problems ({len(report.problems)})")
        for col in ("#", "标识 / ref", "问题 / code", "说明 / message", "级别 / severity"):
            table.add_column(col)
        for p in report.problems:
            table.add_row(str(p["index"] or "文件"), p["ref"], p["code"], f"{p['zh']}\n{p['en']}", p["severity"])
        (out if report.applied else err).print(table)
    if not report.applied:
        err.print(f"[bold red]未导入 / nothing imported[/]：共 {report.total} 项，有效 {report.valid} 项。"
                  "修正文件后重试，或加 --skip-invalid 只导入有效项 / fix the file, or pass --skip-invalid")
        raise typer.Exit(2)
    out.print(f"[green]已导入 / imported[/] 新增 created {report.created}，更新 updated {report.updated}，"
              f"未变 unchanged {report.unchanged}，跳过 skipped {report.total - report.valid}；"
              f"区域版本 / region version {report.version}")


FormatOpt = Annotated[str | None, typer.Option("--format", help="geojson | csv（默认按扩展名 / by extension）")]
CrsOpt = Annotated[str | None, typer.Option("--crs", help="WGS84 | CGCS2000 | GCJ02（默认取文件声明，否则 WGS84）")]
SkipOpt = Annotated[bool, typer.Option("--skip-invalid", help="跳过有问题的项，导入其余 / import the valid rest")]
RepairOpt = Annotated[bool, typer.Option("--accept-repaired", help="采用 make_valid 修复的几何 / use repairs")]


@import_app.command("areas")
def import_areas(path: Annotated[Path, typer.Argument(help="GeoJSON 或 CSV 文件 / file")], fmt: FormatOpt = None,
                 crs: CrsOpt = None, skip_invalid: SkipOpt = False, accept_repaired: RepairOpt = False) -> None:
    """导入区域（村/社区多边形或代码表）/ Import areas (polygons or a code list)."""
    _run("areas", path, fmt, crs, skip_invalid, accept_repaired)


@import_app.command("sites")
def import_sites(path: Annotated[Path, typer.Argument(help="GeoJSON 文件 / file")], crs: CrsOpt = None,
                 skip_invalid: SkipOpt = False, accept_repaired: RepairOpt = False) -> None:
    """导入隐患点、水库、学校等 / Import hazard sites."""
    _run("sites", path, "geojson", crs, skip_invalid, accept_repaired)


@app.command("match")
def match(
    geocode: Annotated[list[str] | None, typer.Option("--geocode", help="行政区划代码 / admin code")] = None,
    circle: Annotated[list[str] | None, typer.Option("--circle", help='"纬度,经度 半径km" / "lat,lon km"')] = None,
    default_region: Annotated[bool, typer.Option("--default-region", help="用内置默认区域，不连数据库")] = False,
) -> None:
    """测试预警范围命中哪些村/隐患点 / Show what a warning area reaches."""
    from geo.region import default_region_index, region_index
    from geo.targets import MatchTarget
    from jiaoying.cli_common import fail, settings_or_exit

    circles = []
    for c in circle or []:
        try:
            centre, radius = c.split()
            lat, lon = (float(v) for v in centre.split(","))
            circles.append((lat, lon, float(radius)))
        except ValueError:
            raise fail(f"圆格式应为 \"纬度,经度 半径km\" / circle must be \"lat,lon km\": {c!r}") from None
    target = MatchTarget(circles=tuple(circles), geocodes=tuple(geocode or ()))
    if default_region:
        result = default_region_index().match(target)
    else:
        from config.database import make_engine, make_session_factory

        settings = settings_or_exit()
        engine = make_engine(settings.database.url)
        try:
            with make_session_factory(engine)() as s:
                result = region_index(s).match(target)
        finally:
            engine.dispose()
    out.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
