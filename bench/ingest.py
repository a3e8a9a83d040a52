"""Intake throughput: CAP parse + normalize per second over the CAP samples, against a bare lxml parse of
the same bytes (the floor no safe parser beats), and FIRMS 100,000 synthetic rows → warnings.

    python bench/ingest.py [SAMPLES_DIR] [--seconds 3]

SAMPLES_DIR defaults to ../shared/samples beside the project. Targets: ≥ 1,000 CAP documents/s,
≥ 30% of the bare lxml rate; FIRMS 100k rows ≤ 3 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warning.draft import ParseError  # noqa: E402
from warning.feeds import ParserContext, get_parser  # noqa: E402
from warning.feeds.common import CHENGQU_CENTER  # noqa: E402
from warning.normalize import draft_to_json  # noqa: E402


def rate(fn, docs: list[bytes], seconds: float) -> float:  # type: ignore[no-untyped-def]
    n = 0
    start = time.perf_counter()
    while True:
        for d in docs:
            fn(d)
        n += len(docs)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def firms_rows(n: int, seed: int = 42) -> bytes:
    """Global-looking hotspots with a few dense clusters around the region (where the work is)."""
    rnd = random.Random(seed)
    lat0, lon0 = CHENGQU_CENTER
    head = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence,version,"
            "bright_t31,frp,daynight")
    lines = [head]
    for i in range(n):
        if i % 10 == 0:  # 10% near the region, in clusters
            c = rnd.randrange(20)
            lat = lat0 + (c % 5 - 2) * 0.05 + rnd.gauss(0, 0.004)
            lon = lon0 + (c // 5 - 2) * 0.05 + rnd.gauss(0, 0.004)
        else:
            lat, lon = rnd.uniform(-60, 70), rnd.uniform(-180, 180)
        lines.append(f"{lat:.5f},{lon:.5f},{rnd.uniform(300, 400):.2f},1.0,1.0,2026-07-20,"
                     f"{rnd.randrange(24):02d}{rnd.randrange(60):02d},{rnd.choice('TA')},{rnd.randrange(101)},"
                     f"6.1NRT,290.0,{rnd.uniform(1, 60):.2f},D")
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("samples", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "samples"))
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    cap_dir = Path(args.samples) / "cap"
    parse = get_parser("cap")
    ctx = ParserContext()
    docs = []
    for f in sorted(cap_dir.iterdir()):
        data = f.read_bytes()
        if f.suffix == ".xsd" or not data.lstrip().startswith(b"<"):
            continue
        try:
            parse(data, ctx)
        except ParseError:
            continue
        docs.append(data)
    if not docs:
        print(f"没有 CAP 样例 / no CAP samples in {cap_dir}", file=sys.stderr)
        return 2

    def ours(d: bytes) -> None:
        for w in parse(d, ctx).warnings:
            draft_to_json(w, None)

    bare_parser = etree.XMLParser()

    def bare(d: bytes) -> None:
        etree.fromstring(d, bare_parser)

    ours(docs[0])
    bare(docs[0])
    r_bare = rate(bare, docs, args.seconds)
    r_ours = rate(ours, docs, args.seconds)
    print(f"CAP documents: {len(docs)} samples, {sum(map(len, docs)) / len(docs) / 1024:.1f} KiB average")
    print(f"CAP parse+normalize: {r_ours:,.0f} docs/s")
    print(f"bare lxml.etree.fromstring: {r_bare:,.0f} docs/s")
    print(f"ratio: {r_ours / r_bare:.0%} of bare lxml  (targets: >= 1,000 docs/s, >= 30%)")

    payload = firms_rows(100_000)
    firms = get_parser("firms")
    start = time.perf_counter()
    result = firms(payload, ctx)
    for w in result.warnings:
        draft_to_json(w, None)
    secs = time.perf_counter() - start
    print(f"FIRMS 100,000 rows -> {len(result.warnings)} warnings in {secs:.2f} s  (target: <= 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
