"""Words of the console's live updates and alarms: key → (中文, English)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "live.refresh": ("有新变化，点此刷新", "New changes: click to refresh"),
    "live.alarm.heading": ("警报", "Alarms"),
    "live.alarm.heading.hint": ("请确认收到", "acknowledge each one"),
    "live.alarm.red_new": ("新红色预警", "New red warning"),
    "live.alarm.red_raised": ("预警升级为红色", "Warning raised to red"),
    "live.alarm.leader_escalation": ("叫应已升级至带班领导", "Callout escalated to the leader on duty"),
    "live.alarm.untitled": ("查看预警详情", "Open the warning"),
    "live.alarm.run": ("响应", "Run"),
    "live.alarm.silent": ("未在时限内应答", "Did not answer in time"),
    "live.alarm.calling": ("正在呼叫带班领导", "Now calling the leader on duty"),
    "live.alarm.when": ("发生时间", "At"),
    "live.alarm.drill": ("演练", "Drill"),
    "live.alarm.ack": ("确认收到", "Acknowledge"),
    "live.alarm.ack.label": ("确认收到此警报（记录确认人和时间）",
                             "Acknowledge this alarm (who and when are recorded)"),
    "live.alarm.ack.others": ("须由值班员、带班领导或管理员确认", "A duty officer, the leader on duty or an admin "
                                                             "acknowledges it"),
    "live.sound.enable": ("点击启用警报声音", "Click to enable the alarm sound"),
    "done.live.acknowledged": ("已确认收到警报，确认人和时间已记录。",
                               "Alarm acknowledged; who and when are recorded."),
}
