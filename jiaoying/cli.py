"""The ``jiaoying`` command. Messages are Chinese first with English after a slash; bad arguments
or configuration exit with code 2 and say what to do."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from config.database import make_engine, make_session_factory, ping, session_scope
from config.eventlog import record, verify
from config.logs import setup_logging
from config.runtime import Runtime
from config.settings import load_settings
from config.users import ROLE_NAMES_ZH, Role, User, find_department, hash_password
from jiaoying import contacts_cli, drill_cli, geo_cli, wiring
from jiaoying.cli_common import err, fail, out, settings_or_exit, upgrade_and_seed
from responses.messaging.fake_aliyun import cli as fake_aliyun_cli
from responses.messaging.fake_twilio import cli as fake_twilio_cli
from responses.messaging.fake_twilio.server import ThreadedServer

app = typer.Typer(
    help="叫应 Jiaoying — 灾害预警与响应调度 / disaster early-warning and response orchestrator",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="数据库 / database", no_args_is_help=True)
users_app = typer.Typer(help="用户 / users", no_args_is_help=True)
audit_app = typer.Typer(help="审计 / audit", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(geo_cli.app, name="geo")
app.add_typer(contacts_cli.app, name="contacts")
plans_app = typer.Typer(help="应急预案 / response plans", no_args_is_help=True)
app.add_typer(plans_app, name="plans")
app.add_typer(fake_twilio_cli.app, name="fake-twilio")
app.add_typer(fake_aliyun_cli.app, name="fake-aliyun")
drill_cli.register(app)  # jiaoying drill run / report / demo

KEEP_ALIVE_SECONDS = 75  # idle keep-alive connections of `serve`; more than a proxy's upstream keep-alive


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址 / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口 / port", min=1, max=65535)] = 8000,
    gateway_port: Annotated[int, typer.Option(help="本地模拟网关端口，0 = 任意 / local fake gateway port, 0 = any",
                                              min=0, max=65535)] = 0,
) -> None:
    """启动服务（含调度器）/ Run the server with its scheduler."""
    import os

    import uvicorn

    from jiaoying.app import create_app
    from jiaoying.gateway import local_gateway_settings, needs_fake_aliyun, with_local_gateway
    from jiaoying.scheduler import SendingProcess

    settings = settings_or_exit()
    setup_logging(settings)  # JIAOYING_LOG__FORMAT=json|text; uvicorn's lines go through it (log_config=None)
    if settings.database.auto_upgrade:
        upgrade_and_seed(settings)
    sched = settings.scheduler
    gateway = None
    sending: SendingProcess | None = None
    if sched.enabled and sched.sender_process and sched.jobs == "all":
        # the sending work, and the fake gateway it talks to, run in a child process: see SendingProcess
        local = not settings.twilio.configured or needs_fake_aliyun(settings)
        child_gateway = (gateway_port or _free_loopback_port()) if local else None
        argv = [sys.executable, "-m", "jiaoying", "worker", "--parent-pid", str(os.getpid())]
        if child_gateway is not None:
            argv += ["--gateway-port", str(child_gateway)]
        env = {**os.environ, "JIAOYING_SCHEDULER__JOBS": "sending"}
        sending = SendingProcess(argv, env).start()
        if child_gateway is not None:
            settings = local_gateway_settings(settings, f"http://127.0.0.1:{child_gateway}")
        settings = settings.model_copy(update={"scheduler": sched.model_copy(update={"jobs": "web"})})
        gateway_url = settings.twilio.api_base_url if child_gateway is not None else None
    else:
        settings, gateway = with_local_gateway(settings, port=gateway_port)
        gateway_url = gateway.url if gateway is not None else None
    out.print(f"[green]叫应服务启动[/] http://{host}:{port}  （数据库 / database: {settings.database.url}）")
    if sending is not None:
        out.print(f"发送进程 / sending process: pid {sending.pid}")
    if gateway_url is not None:
        out.print(f"未配置 Twilio：短信/语音发往本地模拟网关 {gateway_url}（不会发到真实号码）"
                  " / no Twilio credentials: messages go to the local fake gateway, never to a real phone")
    setup_logging(settings)  # again: an in-process fake gateway's uvicorn has just set up loggers of its own
    try:
        # open console event streams never end by themselves: without a bound, Ctrl+C would wait for them.
        # An idle keep-alive connection is kept longer than a proxy's or a client's usual 60 s: at uvicorn's 5 s a
        # client (the proxy, the provider's callbacks) reusing one just as the server closed it got a broken
        # request instead of an answer (seen under load by bench/load.py).
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_graceful_shutdown=3,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS, log_config=None)
    finally:
        if sending is not None:
            sending.stop()
        if gateway is not None:
            gateway.stop()


@app.command()
def worker(
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="由 serve 启动时：父进程 / set by serve")] = None,
    gateway_port: Annotated[int, typer.Option(help="本地模拟网关端口，0 = 任意 / local fake gateway port, 0 = any",
                                              min=0, max=65535)] = 0,
    metrics_port: Annotated[int, typer.Option(help="在此端口提供 /metrics，0 = 不提供 / serve /metrics on this port, "
                                              "0 = none", min=0, max=65535)] = 0,
    metrics_host: Annotated[str, typer.Option(help="/metrics 监听地址 / bind address of /metrics")] = "127.0.0.1",
) -> None:
    """只运行调度器（与服务分开部署时）/ Run the scheduler only."""
    import signal
    import threading

    from config.runtime import build_runtime
    from jiaoying.gateway import with_local_gateway
    from jiaoying.scheduler import build_scheduler, watch_parent

    settings = settings_or_exit()
    zh, en = ("发送进程", "sending process") if parent_pid is not None else ("调度器", "scheduler")
    setup_logging(settings, process_label="sender" if parent_pid is not None else "worker")
    if parent_pid is None:  # started by serve: serve has upgraded the database already
        upgrade_and_seed(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if parent_pid is not None:
        watch_parent(parent_pid, stop)
    settings, gateway = with_local_gateway(settings, port=gateway_port)
    setup_logging(settings, process_label="sender" if parent_pid is not None else "worker")  # after the gateway's
    rt = build_runtime(settings)
    sched = build_scheduler(rt)
    sched.start()
    metrics_server = _worker_metrics(rt, metrics_host, metrics_port) if metrics_port else None
    out.print(f"[green]{zh}已启动 / {en} running[/]（Ctrl+C 退出 / to stop）"
              + (f" 模拟网关 / fake gateway {gateway.url}" if gateway is not None else ""))
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        sched.shutdown(wait=True)  # the running tick finishes and writes what it sent
        sender = rt.state.get("messaging_sender")
        if sender is not None:
            sender.close()
        rt.close()
        if gateway is not None:
            gateway.stop()


def _worker_metrics(rt: Runtime, host: str, port: int) -> ThreadedServer:
    """A worker's ``/metrics`` (its job durations and failures are its own) in a thread of its own."""
    from jiaoying.metrics import metrics_app

    try:
        server = ThreadedServer(metrics_app(rt), host=host, port=port).start()
    except OSError as exc:
        raise fail(f"无法在 {host}:{port} 提供 /metrics / cannot serve /metrics on {host}:{port}: {exc}") from None
    setup_logging(rt.settings, process_label="worker")  # again: uvicorn has just set up loggers of its own
    out.print(f"/metrics: http://{host}:{port}/metrics")
    return server


@db_app.command("upgrade")
def db_upgrade() -> None:
    """升级数据库结构到最新 / Upgrade the database schema to the latest revision."""
    settings = settings_or_exit()
    try:
        upgrade_and_seed(settings)
    except Exception as exc:
        raise fail(f"数据库升级失败 / upgrade failed: {exc}", 1) from None
    out.print("[green]数据库已是最新 / database is up to date[/]")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option("--username", help="用户名 / username")],
    role: Annotated[str, typer.Option("--role", help="角色 / role: " + ", ".join(r.value for r in Role))],
    department: Annotated[str | None, typer.Option("--department", help="部门代码或名称 / department")] = None,
    password: Annotated[str | None, typer.Option("--password", help="密码；省略则从标准输入读取")] = None,
    display_name: Annotated[str, typer.Option("--display-name", help="显示名 / display name")] = "",
) -> None:
    """创建用户 / Create a user."""
    try:
        role_v = Role(role)
    except ValueError:
        raise fail(f"未知角色 {role!r}；可选 / choose one of: {', '.join(r.value for r in Role)}") from None
    if role_v is Role.ANALYST and not department:
        raise fail("部门研判人员必须指定 --department / an analyst needs --department")
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass("密码 / password: ")
            if getpass.getpass("再次输入 / repeat: ") != password:
                raise fail("两次输入的密码不一致 / passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise fail("密码至少 8 个字符 / the password needs at least 8 characters")
    settings = settings_or_exit()
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            if s.execute(select(User).where(User.username == username)).scalar_one_or_none():
                raise fail(f"用户 {username} 已存在 / user exists")
            dept = None
            if department:
                dept = find_department(s, department)
                if dept is None:
                    raise fail(f"未知部门 {department!r} / unknown department")
            from config.clock import SystemClock

            now = SystemClock().now()
            user = User(
                username=username, display_name=display_name or username, password_hash=hash_password(password),
                role=role_v.value, department_id=dept.id if dept else None, created_at=now,
            )
            s.add(user)
            s.flush()
            record(s, now=now, action="user.created", entity_type="user", entity_id=user.id, actor="cli",
                   payload={"username": username, "role": role_v.value, "department": dept.code if dept else None})
    finally:
        engine.dispose()
    out.print(f"[green]已创建用户 / created[/] {username}（{ROLE_NAMES_ZH[role_v]}）")


@app.command("check-config")
def check_config() -> None:
    """检查配置与数据库连接 / Check the configuration and the database connection."""
    try:
        settings = load_settings()
    except ValueError as exc:
        raise fail(f"配置无效 / invalid configuration:\n{exc}") from None
    table = Table(title="叫应配置 / configuration")
    table.add_column("项 / item")
    table.add_column("值 / value")
    table.add_row("env", settings.env)
    table.add_row("database", settings.database.url)
    table.add_row("public_base_url", settings.public_base_url)
    table.add_row("display_timezone", settings.display_timezone)
    table.add_row("scheduler", "on" if settings.scheduler.enabled else "off")
    table.add_row("twilio", "已配置 / configured" if settings.twilio.configured else "未配置，使用本地模拟网关 / fake")
    table.add_row("aliyun", "已配置 / configured" if settings.aliyun.configured else "未配置 / not configured")
    for channel, zh in (("sms", "短信"), ("voice", "语音")):
        chosen = settings.provider_for(channel)
        has_keys = settings.aliyun.configured if chosen == "aliyun" else settings.twilio.configured
        choice = getattr(settings.messaging, f"{channel}_provider")
        table.add_row(f"{zh} / {channel}", f"{chosen}（{choice}）" + ("" if has_keys else "，本地模拟 / local fake"))
    table.add_row("log", f"{settings.log.format}, {settings.log.level}")
    table.add_row("/metrics", "需要令牌 / token required" if settings.metrics.token else "仅本机 / loopback only")
    out.print(table)
    problems = settings.check()
    engine = make_engine(settings.database.url)
    try:
        ping(engine)
    except Exception as exc:
        problems.append(f"数据库无法连接 / database unreachable: {exc}")
    finally:
        engine.dispose()
    if problems:
        for p in problems:
            err.print(f"[red]✗[/] {p}")
        raise typer.Exit(2)
    out.print("[green]配置正常 / configuration OK[/]")


@audit_app.command("verify")
def audit_verify() -> None:
    """校验事件日志未被篡改 / Prove the event log is unaltered."""
    settings = settings_or_exit()
    engine = make_engine(settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            result = verify(s)
    finally:
        engine.dispose()
    if result.ok:
        out.print(f"[green]事件日志完整[/]：共 {result.checked} 条 / event log intact ({result.checked} rows)")
        return
    err.print(
        f"[bold red]事件日志被篡改[/]：第一处异常在 id={result.bad_id}（序号 seq={result.bad_seq}）— {result.reason}\n"
        f"Event log altered: first bad row id={result.bad_id} (seq={result.bad_seq}): {result.reason}"
    )
    raise typer.Exit(1)


@app.command("normalize")
def normalize_file(
    file: Annotated[Path, typer.Argument(help="预警文件 / a feed payload file")],
    fmt: Annotated[str, typer.Option("--format", help="格式 / format: cap, usgs, cenc, quakeml, firms, hydro, "
                                                     "geohazard, nws")],
) -> None:
    """把一个预警文件规范化为 JSON（不需要数据库）/ Print a feed payload's normalized warnings as JSON."""
    import json

    from warning.draft import ParseError
    from warning.feeds import FORMATS, ParserContext, get_parser
    from warning.normalize import result_to_json

    if fmt not in FORMATS:
        raise fail(f"未知格式 {fmt!r}；可选 / unknown format, choose one of: {', '.join(FORMATS)}")
    if not file.is_file():
        raise fail(f"找不到文件 / no such file: {file}")
    limit = 50 * 1024 * 1024
    if file.stat().st_size > limit:
        raise fail(f"文件过大（上限 {limit // 1024 // 1024} MiB）/ file too large")
    payload = file.read_bytes()
    from geo.region import default_region_index
    from warning.service import PARSER_SITE_KINDS

    region = default_region_index()
    sites = []
    for site in region.sites():  # the default region's forest blocks and gauges, as a live feed would see them
        if site.kind in PARSER_SITE_KINDS:
            p = site.geometry.representative_point()
            sites.append((str(site.id), site.name, site.kind, p.x, p.y, {}))
    try:
        result = get_parser(fmt)(payload, ParserContext(sites=sites))
        matcher = region.match
        doc = result_to_json(result, matcher)
        text = json.dumps(doc, ensure_ascii=False, indent=1, allow_nan=False)
    except ParseError as exc:
        raise fail(f"无法解析（{exc.reason}）/ cannot parse ({exc.reason}): {exc.detail}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the input, a message and exit 2, never a traceback
        raise fail(f"无法规范化此文件，请检查其格式是否为 --format {fmt} / cannot normalize this file as {fmt}: "
                   f"{type(exc).__name__}: {exc}"[:500]) from None
    sys.stdout.write(text + "\n")


@plans_app.command("validate")
def plans_validate(
    path: Annotated[Path | None, typer.Argument(help="预案文件或目录（默认：内置预案）/ a plan file or folder")] = None,
) -> None:
    """检查预案，列出全部错误（文件、行号、字段）/ Validate plans and list every error."""
    from responses.runs.plans import DEFAULT_PLANS_DIR, validate_path

    target = path or DEFAULT_PLANS_DIR
    if not target.exists():
        raise fail(f"找不到预案文件或目录 / no such plan file or folder: {target}")
    errors = validate_path(target)
    if errors:
        for e in errors:
            err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        err.print(f"[bold red]共 {len(errors)} 处错误 / {len(errors)} error(s)[/]")
        raise typer.Exit(1)
    out.print(f"[green]预案检查通过 / plans valid[/]: {target}")


@app.command("backup")
def backup(
    out_file: Annotated[Path, typer.Option("--out", help="备份文件 / the backup file to write")],
) -> None:
    """在线备份 SQLite 数据库（服务运行中亦可）/ Back up the SQLite database online, while the server runs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from jiaoying.backup import BackupError, backup_sqlite, sqlite_file

    settings = settings_or_exit()
    try:
        source = sqlite_file(settings.database.url)
    except BackupError as exc:
        raise fail(str(exc)) from None
    if source is None:
        raise fail("PostgreSQL 数据库请用 pg_dump 备份、pg_restore 恢复，"
                   "命令见 README「部署 / Deployment」一节的备份部分。"
                   " / Back up PostgreSQL with pg_dump and restore with pg_restore: see the README's Deployment "
                   "section, Backups.")
    try:
        with Progress(TextColumn("备份中 / backing up"), BarColumn(), MofNCompleteColumn(), TextColumn("页 / pages"),
                      console=err, transient=True) as bar:
            task = bar.add_task("backup", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = backup_sqlite(source, out_file, progress=step)
    except BackupError as exc:
        raise fail(str(exc), 2 if exc.bad_argument else 1) from None
    except OSError as exc:
        raise fail(f"无法写入备份文件 / cannot write the backup: {exc}", 1) from None
    size_mb = result.bytes / 1024 / 1024
    out.print(f"[green]备份完成[/]：{result.path}（{size_mb:.1f} MiB，{result.pages} 页）"
              f" / backup written: {result.path} ({size_mb:.1f} MiB, {result.pages} pages)\n"
              f"恢复：停止服务，将此文件复制为数据库文件 {source} 后再启动，并运行 jiaoying audit verify 校验事件日志。"
              f" / To restore: stop the server, copy this file over {source}, start again and run "
              "jiaoying audit verify.")


def main() -> None:
    wiring.install()
    app()


if __name__ == "__main__":
    main()


__all__ = ["app", "main", "Path"]
