"""The console's words, Simplified Chinese first and English second, in one catalogue.

Every string a console page shows comes from here, so a missing translation is a missing key (a test checks
that both languages have every key), not an ``if`` forgotten in a template.
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT_LANG: Final[Lang] = "zh"
HTML_LANG: Final[dict[Lang, str]] = {"zh": "zh-CN", "en": "en"}

# key → (中文, English): the board, login and the frame; the other pages' words are in ``console.words``
_BOARD: Final[dict[str, tuple[str, str]]] = {
    "app.name": ("叫应", "Jiaoying"),
    "app.title": ("叫应 · 值班台", "Jiaoying · Duty console"),
    "board.title": ("值班台", "Duty console"),
    "skip": ("跳到主要内容", "Skip to main content"),
    "lang.switch": ("English", "中文"),
    "lang.switch.label": ("切换为英文界面", "Switch to Chinese"),
    # login
    "login.title": ("登录", "Log in"),
    "login.heading": ("值班台登录", "Duty console login"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.failed": ("用户名或密码错误，请重试。", "Wrong username or password; try again."),
    "login.blocked": ("登录失败次数过多，请 5 分钟后再试。", "Too many failed logins; wait a few minutes."),
    "login.hint": ("账号由管理员用 jiaoying users create 创建。", "Accounts are created by an admin with "
                                                                     "jiaoying users create."),
    "logout": ("退出登录", "Log out"),
    "csrf.title": ("请求已拒绝", "Request refused"),
    "csrf.message": ("表单已过期或来源不明（缺少有效的防伪令牌）。请返回页面刷新后再提交。",
                     "The form has expired or did not come from this console (no valid CSRF token). "
                     "Go back, reload the page and submit again."),
    "csrf.back": ("返回值班台", "Back to the duty console"),
    # header and navigation
    "nav.label": ("主导航", "Main navigation"),
    "nav.board": ("值班台", "Board"),
    "nav.warnings": ("预警", "Warnings"),
    "nav.consultations": ("会商研判", "Consultations"),
    "nav.runs": ("响应", "Responses"),
    "nav.map": ("地图", "Map"),
    "nav.duty": ("值班交接", "Shifts"),
    "nav.feeds": ("数据源", "Feeds"),
    "nav.contacts": ("联系人", "Contacts"),
    "nav.plans": ("预案", "Plans"),
    "live.lost": ("与服务器的连接已断开，正在重连…", "Lost the server; reconnecting…"),
    "problem.title": ("操作未完成", "Not done"),
    "problem.back": ("返回", "Go back"),
    "forbidden.title": ("无权操作", "Not allowed"),
    "forbidden.message": ("当前账号的角色无权查看此页或执行此操作。如需权限，请联系管理员。",
                          "Your role may not open this page or do this. Ask an admin if you need it."),
    "duty.now": ("当前值班", "On duty now"),
    "duty.leader": ("带班领导", "Leader on duty"),
    "duty.officer": ("值班员", "Duty officer"),
    "duty.none": ("未排班", "Nobody rostered"),
    "duty.none.hint": ("请在“值班交接”页添加本班次，或由管理员导入排班表。",
                       "Add this shift on the Shifts page, or have an admin import the roster."),
    "time.now": ("北京时间", "Beijing time"),
    "user.signed_in": ("当前用户", "Signed in as"),
    "summary": ("概况", "Summary"),
    # warnings
    "warnings.title": ("生效预警", "Active warnings"),
    "warnings.empty": ("暂无生效预警。新预警到达后会显示在这里；电话、传真收到的预警请用接报登记录入。",
                       "No active warnings. New ones appear here; enter warnings received by phone or fax "
                       "through manual entry."),
    "warnings.hazard": ("灾种", "Hazard"),
    "warnings.issuer": ("发布单位", "Issuer"),
    "warnings.areas": ("影响乡镇（街道）", "Townships affected"),
    "warnings.areas.none": ("未匹配到本辖区乡镇", "No township of the district matched"),
    "warnings.received": ("接收时间", "Received"),
    "warnings.expires": ("失效时间", "Expires"),
    "warnings.drill": ("演练", "Drill"),
    "warnings.no_level": ("等级未定", "Level not set"),
    # consultations
    "consultations.title": ("待研判 / 待决策会商", "Consultations waiting"),
    "consultations.empty": ("暂无待处理会商。预案要求会商的预警到达后，会在这里列出缺少研判的部门和时限。",
                            "No consultation is waiting. When a plan asks for one, the missing departments "
                            "and the deadline appear here."),
    "consultations.missing": ("未研判部门", "Judgements missing"),
    "consultations.all_in": ("各部门已研判，待带班领导决策", "All judgements in; the leader must decide"),
    "consultations.deadline": ("截止时间", "Deadline"),
    "consultations.state.open": ("研判中", "Departments judging"),
    "consultations.state.deadline_passed": ("已过时限待决策", "Deadline passed, awaiting decision"),
    # runs
    "runs.title": ("响应与叫应进度", "Responses and call-and-answer progress"),
    "runs.empty": ("暂无进行中的响应。红色预警会自动启动响应；其他等级在会商决策后启动。",
                   "No response is running. A red warning starts one at once; other levels after the "
                   "leader's decision."),
    "runs.number": ("响应编号", "Run"),
    "runs.level": ("响应级别", "Response level"),
    "runs.started": ("启动时间", "Started"),
    "runs.state.active": ("响应中", "Active"),
    "runs.state.closing": ("收尾中", "Closing"),
    "runs.township": ("乡镇（街道）", "Township"),
    "runs.other": ("隐患点 / 区级", "Sites / district"),
    "runs.no_callouts": ("本响应尚未叫应任何人。", "Nobody has been called for this run yet."),
    "callouts.answered": ("已应答", "Answered"),
    "callouts.waiting": ("等待应答", "Waiting"),
    "callouts.overdue": ("超时未应答", "Past deadline"),
    "callouts.escalated": ("已升级", "Escalated"),
    "callouts.unanswered": ("无人应答", "Unanswered"),
    "callouts.late": ("迟到应答", "Late"),
    # the same, short, for the progress table's headings on a phone
    "runs.township.short": ("乡镇", "Township"),
    "callouts.answered.short": ("已应", "Ans."),
    "callouts.waiting.short": ("等待", "Wait"),
    "callouts.overdue.short": ("超时", "Overdue"),
    "callouts.escalated.short": ("升级", "Esc."),
    "callouts.unanswered.short": ("无人应", "None"),
    "callouts.late.short": ("迟到", "Late"),
    # measures
    "measures.title": ("措施落实", "Measures"),
    "measures.empty": ("暂无措施指令。响应启动后，预案中的关闭、转移、停工停学等措施会列在这里。",
                       "No measure orders. When a run starts, the plan's closures, evacuations and "
                       "suspensions are listed here."),
    "measures.deadline": ("落实时限", "Deadline"),
    "measures.person": ("责任人", "Responsible"),
    "measures.unassigned": ("无人负责，请指派", "Nobody assigned: assign someone"),
    "measures.areas": ("区域", "Areas"),
    # reports
    "reports.title": ("信息报送", "Information reports"),
    "reports.empty": ("暂无待报送信息。响应启动后，初报、续报和终报的时限会列在这里。",
                      "No report is due. When a run starts, the initial, follow-up and final reports "
                      "are listed here with their deadlines."),
    "reports.due": ("报送时限", "Due"),
    # feeds
    "feeds.title": ("信息源与隔离区", "Feeds and quarantine"),
    "feeds.healthy": ("正常", "Healthy"),
    "feeds.unhealthy": ("异常", "Problem"),
    "feeds.disabled": ("已停用", "Disabled"),
    "feeds.failures": ("连续失败次数", "Failures in a row"),
    "feeds.last_success": ("最近成功", "Last success"),
    "feeds.never": ("从未", "never"),
    "feeds.empty": ("未配置信息源。请联系管理员添加（jiaoying db upgrade 会装入默认信息源）。",
                    "No feed is configured. Ask an admin to add one (jiaoying db upgrade installs the defaults)."),
    "quarantine.title": ("隔离的信息", "Quarantined items"),
    "quarantine.empty": ("隔离区为空：所有收到的信息都已解析。", "Quarantine is empty: every payload received "
                                                            "was parsed."),
    "quarantine.reason": ("原因", "Reason"),
    "quarantine.received": ("收到时间", "Received"),
    "quarantine.hint": ("请在“数据源”页逐条核对后重新处理或忽略。",
                        "Check each one on the Feeds page, then reprocess or dismiss it."),
    # shared
    "overdue": ("已超时", "Overdue"),
    "due_soon": ("即将到期", "Due soon"),
    "count": ("数量", "Count"),
    "none": ("无", "none"),
    # levels: colour and text together, never colour alone
    "level.red": ("红色预警", "Red warning"),
    "level.orange": ("橙色预警", "Orange warning"),
    "level.yellow": ("黄色预警", "Yellow warning"),
    "level.blue": ("蓝色预警", "Blue warning"),
    "level.none": ("等级未定", "No level"),
    "hazard.weather": ("气象灾害", "Weather"),
    "hazard.flood": ("洪涝灾害", "Flood"),
    "hazard.earthquake": ("地震", "Earthquake"),
    "hazard.geohazard": ("地质灾害", "Geological hazard"),
    "hazard.forest_fire": ("森林火灾", "Forest fire"),
    "hazard.none": ("灾种未定", "Hazard not set"),
    "measure.state.ordered": ("已下达", "Ordered"),
    "measure.state.acknowledged": ("已签收", "Acknowledged"),
    "measure.state.in_progress": ("落实中", "In progress"),
    "measure.state.carried_out": ("已落实", "Carried out"),
    "measure.state.rejected": ("被退回", "Rejected"),
    "measure.state.lifting": ("解除中", "Lifting"),
    "measure.state.lifted": ("已解除", "Lifted"),
    "measure.state.cancelled": ("已撤销", "Cancelled"),
    "measure.state.waived": ("已豁免", "Waived"),
    "report.kind.initial_phone": ("电话初报", "Initial report (phone)"),
    "report.kind.initial_written": ("书面初报", "Initial report (written)"),
    "report.kind.followup": ("续报", "Follow-up report"),
    "report.kind.final": ("终报", "Final report"),
}


def _merged() -> dict[str, tuple[str, str]]:
    from console.words import admin, duty, live, map, runs, warnings

    merged = dict(_BOARD)
    for module in (warnings, runs, admin, live, map, duty):
        clash = merged.keys() & module.WORDS.keys()
        if clash:
            raise RuntimeError(f"console words defined twice: {sorted(clash)}")
        merged.update(module.WORDS)
    return merged


MESSAGES: Final[dict[str, tuple[str, str]]] = _merged()


def text(key: str, lang: Lang) -> str:
    """The string for ``key``; an unknown key shows itself so a gap is visible, never a blank."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh" else pair[1]


def pick(value: str | None) -> Lang:
    """A language code from a cookie or a form, falling back to Chinese for anything else."""
    return value if value in LANGS else DEFAULT_LANG  # type: ignore[return-value]
