"""Words of the console's map pages: key → (中文, English)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "map.title": ("地图", "Map"),
    "map.heading": ("预警与叫应地图", "Warnings and call-and-answer map"),
    "map.canvas": ("辖区地图：预警范围、各村叫应状态、隐患点和措施", "Map of the district: warning areas, each "
                   "village's call-and-answer state, hazard sites and measures"),
    "map.noscript": ("地图需要启用 JavaScript。下面的“查找村（社区）”和列表不需要。",
                     "The map needs JavaScript. The village finder and the lists below work without it."),
    "map.loading": ("正在加载地图…", "Loading the map…"),
    "map.failed": ("地图数据加载失败，请检查网络后点“刷新”。", "The map data did not load; check the network "
                   "and press Refresh."),
    "map.updated": ("已更新", "Updated"),
    "map.refresh": ("刷新", "Refresh"),
    "map.open_full": ("打开完整地图", "Open the full map"),
    # the smaller map on the board and on a run's page
    "map.panel.title": ("地图：预警范围与各村叫应", "Map: warning areas and villages' answers"),
    "map.panel.title_run": ("地图：本次响应各村叫应", "Map: this response's villages"),
    "map.panel.no_run": ("暂无进行中的响应，只显示辖区和生效预警。", "No response is running: the district and "
                         "the active warnings only."),
    "map.panel.click_hint": ("点村可看联系人和叫应", "Click a village for its people and calls"),
    # the run
    "map.run.label": ("叫应状态按响应", "Colour villages by the response"),
    "map.run.auto": ("最新进行中的响应（自动）", "The latest open response (automatic)"),
    "map.run.none": ("不显示叫应状态", "Do not show call-and-answer"),
    "map.run.show": ("显示", "Show"),
    "map.run.current": ("当前显示", "Showing"),
    "map.run.nothing": ("暂无进行中的响应：各村不着色。红色预警到达后会自动开始响应，地图随之更新。",
                        "No response is running: villages are not coloured. A red warning starts one at once, "
                        "and the map follows."),
    "map.run.unknown": ("未找到所选响应，已改为不显示叫应状态。", "The response asked for was not found; "
                        "call-and-answer is not shown."),
    "map.run.open": ("响应详情", "Response details"),
    "map.run.active": ("进行中", "Active"),
    "map.run.closing": ("收尾中", "Closing"),
    "map.run.closed": ("已结束", "Closed"),
    "map.drill": ("演练", "Drill"),
    # village states
    "map.state.title": ("各村叫应状态", "Villages: call-and-answer"),
    "map.state.answered": ("已应答", "Answered"),
    "map.state.waiting": ("等待应答", "Waiting for an answer"),
    "map.state.escalated": ("未应答，已升级", "Not answered, escalated"),
    "map.state.unanswered": ("未应答，无上级可升级", "Not answered, nobody above"),
    "map.state.none": ("本次响应未呼叫", "Not called in this response"),
    "map.state.overdue_suffix": ("（已超时）", " (past the deadline)"),
    "map.state.villages": ("个村", "villages"),
    # legend
    "map.legend": ("图例", "Legend"),
    "map.legend.warnings": ("预警范围（边框颜色 = 预警等级）", "Warning areas (outline colour = level)"),
    "map.legend.bounds": ("边界", "Boundaries"),
    "map.legend.district": ("区界、乡镇（街道）界", "District and township boundaries"),
    "map.legend.surveyed": ("村界（测绘）", "Village boundary (surveyed)"),
    "map.legend.approximate": ("村界（示意，虚线）", "Village boundary (approximate, dashed)"),
    "map.legend.approximate_note": ("虚线村界为系统按村（社区）代码在区界内自动生成的示意范围，不是测绘边界；"
                                    "预警是否覆盖某村以地图为参考，请以实际位置核实。",
                                    "Dashed village polygons are generated inside the district boundary from "
                                    "the village list; they are not surveyed. Check real locations before "
                                    "relying on them."),
    "map.legend.sites": ("隐患点（颜色 = 风险等级）", "Hazard sites (colour = risk)"),
    "map.legend.measures": ("措施（⚑，红框 = 已超时）", "Measures (⚑, red ring = overdue)"),
    "map.legend.measure_open": ("措施未完成", "Measure open"),
    "map.legend.measure_done": ("措施已解除/撤销", "Measure lifted or cancelled"),
    "map.key.warning": ("预警范围（框色=等级）", "Warning area (outline = level)"),
    "map.key.approximate": ("虚线=示意村界", "Dashed = approximate"),
    # warnings list
    "map.warnings.title": ("生效预警", "Active warnings"),
    "map.warnings.empty": ("暂无生效预警。新预警到达后，其范围会按等级颜色画在地图上。",
                           "No active warnings. When one arrives its area is drawn in its level's colour."),
    "map.warnings.not_drawn": ("无可绘制的范围", "No area to draw"),
    "map.warnings.expires": ("失效", "Expires"),
    # village finder and panel
    "map.find": ("查找村（社区）", "Find a village"),
    "map.find.pick": ("请选择…", "Choose…"),
    "map.find.go": ("查看", "Show"),
    "map.village.hint": ("点击地图上的村（社区），或用上面的“查找村（社区）”，查看责任人、叫应、措施和隐患点。",
                         "Click a village on the map, or use the finder, to see its responsible people, calls, "
                         "measures and hazard sites."),
    "map.village.unknown": ("未找到该村（社区）：", "No such village: "),
    "map.village.code": ("代码", "Code"),
    "map.village.close": ("关闭", "Close"),
    "map.village.approximate": ("示意范围（非测绘边界）", "Approximate outline (not surveyed)"),
    "map.village.population": ("人口", "Population"),
    "map.village.state": ("叫应状态", "Call-and-answer"),
    "map.people.title": ("责任人", "Responsible people"),
    "map.people.empty": ("本村（社区）暂无登记的责任人。请在“联系人”中导入村长、网格员，否则叫应无人可呼。",
                         "Nobody is registered for this village. Import its head and grid workers under "
                         "Contacts, or nobody can be called."),
    "map.people.unreachable": ("当前无法联系（停用、不在任期或无号码）", "Cannot be reached now (inactive, out of "
                               "term or no number)"),
    "map.people.phone_hidden": ("号码仅值班员、带班领导和管理员可见。", "Numbers are shown to duty officers, "
                                "leaders and admins only."),
    "map.people.above": ("上一级（本村未应答时升级呼叫）", "One level up (called when the village does not answer)"),
    "map.people.backup": ("备用", "backup"),
    "map.people.demo": ("演示数据", "demo data"),
    "map.calls.title": ("本次响应的叫应", "Calls in this response"),
    "map.calls.none": ("本次响应没有呼叫本村（社区）的人员。", "Nobody was called about this village in this "
                       "response."),
    "map.calls.no_run": ("未选择响应：选择一个响应后显示叫应情况。", "No response chosen: choose one to see "
                         "its calls."),
    "map.calls.name": ("姓名", "Name"),
    "map.calls.state": ("状态", "State"),
    "map.calls.answered": ("应答时间", "Answered at"),
    "map.calls.deadline": ("应答时限", "Answer by"),
    "map.calls.late": ("逾时应答", "late"),
    "map.place.villages": ("（{n} 个村/社区）", " ({n} villages)"),
    "map.measures.title": ("措施", "Measures"),
    "map.measures.none": ("本次响应在此没有措施。", "No measure of this response here."),
    "map.measures.unit": ("责任单位", "Responsible"),
    "map.measures.deadline": ("时限", "Deadline"),
    "map.measures.overdue": ("⚠ 已超时", "⚠ Overdue"),
    "map.sites.title": ("隐患点", "Hazard sites"),
    "map.sites.none": ("本村（社区）没有登记的隐患点。", "No hazard site is registered in this village."),
    "map.sites.residents": ("需转移人数", "People to evacuate"),
    # callout states, as the panel lists each call
    "map.callout.calling": ("叫应中", "Calling"),
    "map.callout.answered": ("已应答", "Answered"),
    "map.callout.escalated": ("未应答，已升级", "Not answered, escalated"),
    "map.callout.unanswered": ("未应答，无上级可升级", "Not answered, nobody above"),
    "map.callout.cancelled": ("已取消", "Cancelled"),
    # measure states
    "map.measure.ordered": ("已下达", "Ordered"),
    "map.measure.acknowledged": ("已签收", "Acknowledged"),
    "map.measure.in_progress": ("落实中", "In progress"),
    "map.measure.carried_out": ("已落实", "Carried out"),
    "map.measure.rejected": ("被退回", "Rejected"),
    "map.measure.lifting": ("解除中", "Being lifted"),
    "map.measure.lifted": ("已解除", "Lifted"),
    "map.measure.cancelled": ("已撤销", "Cancelled"),
    "map.measure.waived": ("已豁免", "Waived"),
    # site risk
    "map.risk.high": ("高风险", "High risk"),
    "map.risk.medium": ("中风险", "Medium risk"),
    "map.risk.low": ("低风险", "Low risk"),
    "map.risk.unknown": ("风险等级未定", "Risk not rated"),
    # duty roles
    "map.role.village_head": ("村（社区）负责人", "Village head"),
    "map.role.grid_worker": ("网格员", "Grid worker"),
    "map.role.township_chief": ("镇（街道）负责人", "Township chief"),
    "map.role.district_leader": ("区领导", "District leader"),
    "map.role.site_monitor": ("隐患点监测员", "Site monitor"),
    "map.role.department_duty": ("部门值班人员", "Department duty officer"),
}
