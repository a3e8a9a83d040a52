"""``jiaoying fake-twilio``: run the Twilio-compatible fake server for the demo and drills."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from responses.messaging.fake_twilio.state import FakeConfig, Faults

app = typer.Typer(help="模拟 Twilio 服务（演示、演练、测试）/ Twilio-compatible fake server", add_completion=False)
out = Console()
err = Console(stderr=True)


def fault_rate(name: str, value: float) -> float:
    """A fault option's share of requests, or exit 2 saying so (both fakes' CLIs)."""
    if not 0.0 <= value <= 1.0:
        err.print(f"[bold red]错误 / Error:[/] {name} 必须在 0 到 1 之间 / must be between 0 and 1: {value}")
        raise typer.Exit(2)
    return value


@app.callback(invoke_without_command=True)
def fake_twilio(
    host: Annotated[str, typer.Option(help="监听地址 / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口 / port", min=1, max=65535)] = 8099,
    account_sid: Annotated[str, typer.Option(help="账号 SID / account SID")] = "AC" + "0" * 32,
    auth_token: Annotated[str, typer.Option(help="认证令牌（用于签名回调）/ auth token (signs callbacks)")] = (
        "fake-auth-token"),
    sms_url: Annotated[str | None, typer.Option(help="收到短信时回调的地址 / inbound SMS webhook URL")] = None,
    server_errors: Annotated[float, typer.Option(help="5xx 比例 / share of 5xx answers")] = 0.0,
    rate_limited: Annotated[float, typer.Option(help="429 比例 / share of 429 answers")] = 0.0,
    timeouts: Annotated[float, typer.Option(help="超时比例 / share of requests held until timeout")] = 0.0,
    invalid_numbers: Annotated[float, typer.Option(help="无效号码比例 / share of invalid numbers")] = 0.0,
    seed: Annotated[int, typer.Option(help="随机种子 / fault seed")] = 0,
    no_callbacks: Annotated[bool, typer.Option("--no-callbacks", help="不发送状态回调 / send no callbacks")] = False,
) -> None:
    """启动模拟 Twilio 服务 / Run the fake Twilio server."""
    import uvicorn

    from responses.messaging.fake_twilio.app import create_fake_app

    if not account_sid.startswith("AC") or len(account_sid) != 34:
        err.print("[bold red]错误 / Error:[/] 账号 SID 须以 AC 开头、共 34 位 / account SID must be AC + 32 chars")
        raise typer.Exit(2)
    faults = Faults(server_error=fault_rate("--server-errors", server_errors),
                    rate_limited=fault_rate("--rate-limited", rate_limited), timeout=fault_rate("--timeouts", timeouts),
                    invalid_number=fault_rate("--invalid-numbers", invalid_numbers), seed=seed)
    if faults.total > 1.0:
        err.print("[bold red]错误 / Error:[/] 故障比例之和超过 1 / fault rates add up to more than 1")
        raise typer.Exit(2)
    config = FakeConfig(accounts={account_sid: auth_token}, sms_url=sms_url, callbacks=not no_callbacks,
                        faults=faults)
    out.print(f"[green]模拟 Twilio 已启动 / fake Twilio running[/] http://{host}:{port}  账号 / account {account_sid}")
    out.print("设置 / set JIAOYING_TWILIO__API_BASE_URL="
              f"http://{host}:{port} JIAOYING_TWILIO__ACCOUNT_SID={account_sid} JIAOYING_TWILIO__AUTH_TOKEN=…")
    uvicorn.run(create_fake_app(config), host=host, port=port, log_level="warning", access_log=False)
