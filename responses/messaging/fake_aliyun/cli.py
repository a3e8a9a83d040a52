"""``jiaoying fake-aliyun``: run the fake Alibaba Cloud SMS and voice API for the demo and drills."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from responses.messaging.fake_aliyun.state import FakeConfig, Faults
from responses.messaging.fake_twilio.cli import fault_rate

app = typer.Typer(help="模拟阿里云短信与语音服务（演示、演练、测试）/ fake Alibaba Cloud SMS and voice API",
                  add_completion=False)
out = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def fake_aliyun(
    host: Annotated[str, typer.Option(help="监听地址 / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口 / port", min=1, max=65535)] = 8098,
    access_key_id: Annotated[str, typer.Option(help="AccessKey ID")] = "LTAIfake0000000000000000",
    access_key_secret: Annotated[str, typer.Option(help="AccessKey Secret（校验请求签名 / checks signatures）")] = (
        "fake-access-secret"),
    push_base_url: Annotated[str | None, typer.Option(
        help="推送地址前缀，如 http://127.0.0.1:8000/webhooks/aliyun/<令牌> / where receipts, replies and keys go")
    ] = None,
    throttled: Annotated[float, typer.Option(help="isv.BUSINESS_LIMIT_CONTROL 比例 / share")] = 0.0,
    rate_limited: Annotated[float, typer.Option(help="Throttling.User 比例 / share")] = 0.0,
    server_errors: Annotated[float, typer.Option(help="5xx / isp.SYSTEM_ERROR 比例 / share")] = 0.0,
    timeouts: Annotated[float, typer.Option(help="超时比例 / share of requests held until timeout")] = 0.0,
    invalid_numbers: Annotated[float, typer.Option(help="无效号码比例 / share of invalid numbers")] = 0.0,
    seed: Annotated[int, typer.Option(help="随机种子 / fault seed")] = 0,
) -> None:
    """启动模拟阿里云服务 / Run the fake Alibaba Cloud API."""
    import uvicorn

    from responses.messaging.fake_aliyun.app import create_fake_app

    if not access_key_id.strip() or not access_key_secret.strip():
        err.print("[bold red]错误 / Error:[/] AccessKey 不能为空 / the access key must not be empty")
        raise typer.Exit(2)
    if push_base_url is not None and not push_base_url.startswith(("http://", "https://")):
        err.print("[bold red]错误 / Error:[/] --push-base-url 须以 http:// 或 https:// 开头 / must be an http(s) URL")
        raise typer.Exit(2)
    faults = Faults(throttled=fault_rate("--throttled", throttled),
                    rate_limited=fault_rate("--rate-limited", rate_limited),
                    server_error=fault_rate("--server-errors", server_errors),
                    timeout=fault_rate("--timeouts", timeouts),
                    invalid_number=fault_rate("--invalid-numbers", invalid_numbers), seed=seed)
    if faults.total > 1.0:
        err.print("[bold red]错误 / Error:[/] 故障比例之和超过 1 / fault rates add up to more than 1")
        raise typer.Exit(2)
    config = FakeConfig(accounts={access_key_id: access_key_secret}, push_base_url=push_base_url, faults=faults)
    out.print(f"[green]模拟阿里云已启动 / fake Alibaba Cloud running[/] http://{host}:{port}")
    out.print(f"设置 / set JIAOYING_ALIYUN__SMS_ENDPOINT={host}:{port} JIAOYING_ALIYUN__VOICE_ENDPOINT={host}:{port}"
              f" JIAOYING_ALIYUN__PROTOCOL=http JIAOYING_ALIYUN__ACCESS_KEY_ID={access_key_id}"
              " JIAOYING_ALIYUN__ACCESS_KEY_SECRET=…")
    uvicorn.run(create_fake_app(config), host=host, port=port, log_level="warning", access_log=False)
