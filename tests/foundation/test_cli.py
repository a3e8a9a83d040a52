from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], tmp: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "JIAOYING_DATABASE__URL": f"sqlite:///{tmp / 'cli.db'}", "JIAOYING_ENV": "dev", **env}
    full_env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "jiaoying", *args], input=stdin, capture_output=True, text=True,
                          env=full_env, cwd=tmp, timeout=120)


def test_users_create_then_tamper_is_caught_by_audit_verify(tmp_path: Path) -> None:
    r = run(["users", "create", "--username", "zhang", "--role", "analyst", "--department", "水利局"], tmp_path,
            stdin="s3cret-pass\n")
    assert r.returncode == 0, r.stderr
    assert "zhang" in r.stdout
    r = run(["audit", "verify"], tmp_path)
    assert r.returncode == 0 and "完整" in r.stdout
    import sqlite3

    con = sqlite3.connect(tmp_path / "cli.db")
    row_id = con.execute("SELECT id FROM event_log ORDER BY seq LIMIT 1").fetchone()[0]
    con.execute("UPDATE event_log SET actor='someone-else' WHERE id=?", (row_id,))
    con.commit()
    con.close()
    r = run(["audit", "verify"], tmp_path)
    assert r.returncode == 1
    assert f"id={row_id}" in r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["users", "create", "--username", "x", "--role", "wizard", "--password", "longenough"], "未知角色"),
        (["users", "create", "--username", "x", "--role", "analyst", "--password", "longenough"], "--department"),
        (["users", "create", "--username", "x", "--role", "admin", "--password", "short"], "8"),
        (["serve", "--port", "99999"], "port"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, args: list[str], needle: str) -> None:
    r = run(args, tmp_path)
    assert r.returncode == 2
    assert needle in r.stderr


def test_placeholder_secret_refused_in_production(tmp_path: Path) -> None:
    r = run(["check-config"], tmp_path, JIAOYING_ENV="production")
    assert r.returncode == 2
    assert "JIAOYING_SECURITY__SECRET_KEY" in r.stderr
    r = run(["check-config"], tmp_path, JIAOYING_ENV="production", JIAOYING_SECURITY__SECRET_KEY="k" * 48)
    assert r.returncode == 0, r.stderr


def test_duplicate_user_is_refused(tmp_path: Path) -> None:
    assert run(["users", "create", "--username", "li", "--role", "viewer", "--password", "abcdefgh1"],
               tmp_path).returncode == 0
    r = run(["users", "create", "--username", "li", "--role", "viewer", "--password", "abcdefgh1"], tmp_path)
    assert r.returncode == 2 and "已存在" in r.stderr
