"""The board's shared snapshots (console/snapshots.py): when a read may share a build and when it must not."""

from __future__ import annotations

import threading
import time

from console.snapshots import Snapshots


class Source:
    """A stand-in for the database: an event log whose newest id moves, and a count of builds."""

    def __init__(self) -> None:
        self.newest = 10
        self.builds = 0
        self.latest_reads = 0

    def build(self) -> tuple[int, str]:
        self.builds += 1
        return self.newest, f"board@{self.newest}#{self.builds}"

    def latest(self) -> int:
        self.latest_reads += 1
        return self.newest


def test_a_lone_reader_always_sees_every_change() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    assert snaps.get("zh", src.build, latest=src.latest).value == "board@10#1"
    mono[0] += 0.5
    assert snaps.get("zh", src.build, latest=src.latest).value == "board@10#1", "nothing changed: no new build"
    mono[0] += 1.2
    src.newest = 11  # a change, then a read a moment later, well inside the new snapshot's age
    assert snaps.get("zh", src.build, latest=src.latest).value == "board@11#2"
    src.newest = 12
    mono[0] += 0.2
    assert snaps.get("zh", src.build, latest=src.latest).value == "board@12#3"
    assert src.latest_reads == 2, "a quiet reader checks the newest row instead of trusting the age"


def test_busy_readers_share_one_build_a_second_old_at_most() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    for _ in range(50):  # fifty pages within half a second, while rows are written all the time
        src.newest += 1
        mono[0] += 0.01
        got = snaps.get("zh", src.build, latest=src.latest)
        assert got.key >= src.newest - 50
    assert src.builds <= 3, f"{src.builds} builds for 50 reads within half a second"
    mono[0] += 1.01  # the shared snapshot is now too old for anyone
    src.newest += 1
    assert snaps.get("zh", src.build, latest=src.latest).key == src.newest


def test_a_live_refresh_gets_at_least_the_row_it_was_told_of() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    for _ in range(5):  # busy
        snaps.get("zh", src.build, latest=src.latest)
    src.newest = 42
    got = snaps.get("zh", src.build, latest=src.latest, since=42)
    assert got.key >= 42 and got.value.startswith("board@42")
    built = src.builds
    assert snaps.get("zh", src.build, latest=src.latest, since=42).key == 42 and src.builds == built, \
        "the other pages told of the same row share that build"


def test_a_page_after_the_readers_own_action_is_built_fresh_and_languages_apart() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    for _ in range(5):
        snaps.get("zh", src.build, latest=src.latest)
    n = src.builds
    snaps.get("zh", src.build, latest=src.latest, fresh=True)
    assert src.builds == n + 1
    snaps.get("en", src.build, latest=src.latest)
    assert src.builds == n + 2, "each language has its own snapshot"


def test_the_application_clock_jumping_ages_a_snapshot() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    for _ in range(5):
        snaps.get("zh", src.build, latest=src.latest, now=1000.0)
    n = src.builds
    snaps.get("zh", src.build, latest=src.latest, now=1000.0 + 40 * 60)  # a deadline may have passed meanwhile
    assert src.builds == n + 1


def test_readers_arriving_during_a_build_wait_for_it_instead_of_building_again() -> None:
    snaps: Snapshots[str] = Snapshots()
    src = Source()
    started = threading.Event()

    def slow_build() -> tuple[int, str]:
        started.set()
        time.sleep(0.3)
        return src.build()

    first = threading.Thread(target=lambda: snaps.get("zh", slow_build, latest=src.latest, fresh=True))
    first.start()
    started.wait(5)
    got: list[str] = []
    others = [threading.Thread(target=lambda: got.append(snaps.get("zh", src.build, latest=src.latest).value))
              for _ in range(8)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert src.builds == 1 and got == ["board@10#1"] * 8


def test_busy_readers_take_the_snapshot_they_have_while_the_next_is_built_apart() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    release = threading.Event()
    built_apart = threading.Event()

    def apart() -> tuple[int, str]:
        release.wait(5)  # a slow build, as on a loaded server
        got = src.build()
        built_apart.set()
        return got

    for _ in range(4):  # readers every 0.3 s: busy
        snaps.get("zh", src.build, latest=src.latest, apart=apart)
        mono[0] += 0.3
    assert src.builds == 1
    src.newest = 20
    for _ in range(5):  # past its age now: nobody waits for the database, one build runs apart meanwhile
        mono[0] += 0.3
        assert snaps.get("zh", src.build, latest=src.latest, apart=apart).value == "board@10#1"
    release.set()
    assert built_apart.wait(5)
    for _ in range(100):  # the background thread stores what it built
        if snaps.builds == 2:
            break
        time.sleep(0.02)
    assert src.builds == 2, "one build apart, however many readers asked meanwhile"
    mono[0] -= 1.0  # back to just after that build began: its snapshot is young
    assert snaps.get("zh", src.build, latest=src.latest, apart=apart).value == "board@20#2"
    mono[0] += 20  # older than STALE_SECONDS (and alone again): the reader builds in its own request
    src.newest = 30
    assert snaps.get("zh", src.build, latest=src.latest, apart=apart).key == 30


def test_a_clock_jump_is_never_covered_by_a_snapshot_built_apart() -> None:
    mono = [0.0]
    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0])
    src = Source()
    for _ in range(5):  # busy
        snaps.get("zh", src.build, latest=src.latest, now=1000.0, apart=src.build)
        mono[0] += 0.1
    mono[0] += 1.0
    got = snaps.get("zh", src.build, latest=src.latest, now=1000.0 + 40 * 60, apart=src.build)
    assert got.as_of == 1000.0 + 40 * 60, "a deadline may have passed: built for this reader, not the old one"


def test_builds_are_spaced_by_their_own_cost_and_shared_by_the_readers_who_waited() -> None:
    """Live pages each asking for a board that covers a newer row, all the time (a fan-out): a build of 0.3 s is
    followed by a pause of 0.6 s before the next, not by the next at once; a quick build costs no pause."""
    mono = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 3))
        mono[0] += s

    snaps: Snapshots[str] = Snapshots(monotonic=lambda: mono[0], sleep=sleep)
    src = Source()

    def slow_build() -> tuple[int, str]:
        mono[0] += 0.3
        return src.build()

    src.newest = 11
    first = snaps.get("zh", slow_build, latest=src.latest, since=11)
    assert (first.key, slept) == (11, [])
    src.newest = 12
    mono[0] += 0.1  # a page told of row 12 asks 0.1 s after that build ended
    second = snaps.get("zh", slow_build, latest=src.latest, since=12)
    assert second.key == 12 and slept == [0.5], "waited for 2 × 0.3 s after the last build's end"
    assert abs(second.built_at - 0.9) < 1e-9  # began after the pause, so covers whatever came during it
    src.newest = 13
    mono[0] += 2.0  # a quiet spell: the next build has no pause to make up
    assert snaps.get("zh", slow_build, latest=src.latest, since=13).key == 13 and slept == [0.5]

    quick: Snapshots[str] = Snapshots(monotonic=lambda: mono[0], sleep=sleep)
    for n in range(14, 20):  # builds that take no time on this clock are never held back
        src.newest = n
        assert quick.get("zh", src.build, latest=src.latest, since=n).key == n
    assert slept == [0.5]
