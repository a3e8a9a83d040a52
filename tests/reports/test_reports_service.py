"""Information reports against the real database: due when the run starts, follow-ups at 08:00 and
17:00 Asia/Shanghai across midnight, drafted from the run's data, edited, sent, overdue flagged."""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from zoneinfo import ZoneInfo

from sqlalchemy import select

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from responses.measures import service as measure_service
from responses.reports import service as info_report_service
from responses.reports.models import InfoReport
from responses.runs import service
from responses.runs.core import Trigger
from responses.runs.models import Notice, SupervisionFlag
from warning.models import Warning

TZ = ZoneInfo("Asia/Shanghai")


def local(d: int, h: int, m: int = 0) -> dt.datetime:
    return dt.datetime(2026, 7, d, h, m, tzinfo=TZ)


def _start(rt: Runtime, region: ModuleType) -> int:
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        r = region.make_region(s, now)
        w = s.get(Warning, r.warning_id)
        run, _ = service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                   actor="user:leader", now=now, measures=[region.EVACUATION, region.STOP_SCHOOL])
        assert run is not None
        return run.id


def _reports(rt: Runtime, run_id: int) -> list[InfoReport]:
    with session_scope(rt.session_factory) as s:
        return info_report_service.for_run(s, run_id)


def test_reports_across_midnight(runtime: Runtime, region: ModuleType) -> None:
    from jiaoying.scheduler import job_specs, run_job
    from responses.reports.jobs import reports_sweep

    clock = VirtualClock(local(19, 23, 40))
    rt = Runtime(runtime.settings, runtime.engine, runtime.session_factory, clock)
    assert rt.settings.tz == TZ
    run_id = _start(rt, region)
    reps = _reports(rt, run_id)
    assert [(r.kind, r.due_at) for r in reps] == [
        ("initial_phone", local(20, 0, 10)), ("initial_written", local(20, 0, 40)), ("followup", local(20, 8))]
    phone = reps[0]
    assert phone.title.startswith("关于橙色暴雨洪涝预警响应情况的")
    assert "城区气象台发布暴雨橙色预警" in phone.draft_text and "上村、中村、下村" in phone.draft_text
    assert "转移疏散（北街街道）：已下达" in phone.draft_text and "停学（区教育局）" in phone.draft_text

    # the phone report goes at 00:05; the written one is forgotten
    clock.set(local(20, 0, 5))
    with session_scope(rt.session_factory) as s:
        rep = info_report_service.get(s, phone.id)
        assert rep is not None
        info_report_service.mark_sent(s, rep, via="phone", actor="user:duty", now=clock.now(), recipient="市应急管理局")
        assert rep.late is False

    # 08:05 local: the sweep flags the written report and the 08:00 follow-up, and plans 17:00
    clock.set(local(20, 8, 5))
    run_job(rt, next(j for j in job_specs(rt) if j.name == "reports_sweep"))  # as the scheduler runs it
    reps = _reports(rt, run_id)
    assert [(r.kind, r.seq, r.due_at) for r in reps if r.kind == "followup"] == [
        ("followup", 1, local(20, 8)), ("followup", 2, local(20, 17))]
    with session_scope(rt.session_factory) as s:
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "report_overdue")
                          .order_by(SupervisionFlag.id)).scalars().all()
        kinds = [s.get(InfoReport, int(f.subject_id)).kind for f in flags]  # type: ignore[union-attr]
        assert kinds == ["initial_written", "followup"]
        notices = s.execute(select(Notice).where(Notice.kind == "report_overdue")).scalars().all()
        assert len(notices) == 2 and all("信息报送超时" in n.subject for n in notices)
        assert any("2026年7月20日 00:40" in n.subject for n in notices)
    reports_sweep(rt)  # idempotent
    with session_scope(rt.session_factory) as s:
        assert len(s.execute(select(Notice).where(Notice.kind == "report_overdue")).scalars().all()) == 2
        assert len(info_report_service.for_run(s, run_id)) == 4

    # 18:00: sweep plans the next morning's 08:00
    clock.set(local(20, 18))
    reports_sweep(rt)
    assert [r.due_at for r in _reports(rt, run_id) if r.kind == "followup"][-1] == local(21, 8)

    # the written report sent late with an edited text; its flag clears
    with session_scope(rt.session_factory) as s:
        written = next(r for r in info_report_service.for_run(s, run_id) if r.kind == "initial_written")
        info_report_service.mark_sent(s, written, via="written", actor="user:duty", now=clock.now(),
                                      text=written.draft_text + "\n（补报）")
        assert written.late is True and written.text != written.draft_text
        flag = s.execute(select(SupervisionFlag).where(
            SupervisionFlag.key == f"report_overdue:info_report:{written.id}")).scalar_one()
        assert flag.cleared_at == clock.now()

    # closing: lift and waive, close at 20:00 → the final report is due, the 21st's 08:00 follow-up cancelled
    clock.set(local(20, 20))
    with session_scope(rt.session_factory) as s:
        run = service.get_run(s, run_id)
        assert run is not None
        service.begin_closing(s, run, reason="warning cancelled", actor="rule:warning_cancelled", now=clock.now())
        for o in measure_service.for_run(s, run_id):
            measure_service.transition(s, o, "waive", actor="user:leader", now=clock.now(), reason="演练结束")
        service.close_run(s, run, actor="user:leader", now=clock.now())
    reps = _reports(rt, run_id)
    final = next(r for r in reps if r.kind == "final")
    assert final.due_at == local(21, 20)  # the default: within a day of closing
    assert "本次应急响应结束" in final.draft_text and "2026年7月20日 20:00" in final.draft_text
    cancelled = [r for r in reps if r.state == "cancelled"]
    assert [r.due_at for r in cancelled] == [local(21, 8)]


def test_edit_rules(runtime: Runtime, region: ModuleType) -> None:
    run_id = _start(runtime, region)
    with session_scope(runtime.session_factory) as s:
        rep = info_report_service.for_run(s, run_id)[0]
        try:
            info_report_service.edit(s, rep, text="  ", actor="user:duty", now=runtime.now())
            raise AssertionError("empty text accepted")
        except info_report_service.ReportActionError as exc:
            assert exc.status == 400 and "不能为空" in exc.zh
        info_report_service.mark_sent(s, rep, via="phone", actor="user:duty", now=runtime.now())
        try:
            info_report_service.mark_sent(s, rep, via="phone", actor="user:duty", now=runtime.now())
            raise AssertionError("sent twice")
        except info_report_service.ReportActionError as exc:
            assert exc.status == 409
