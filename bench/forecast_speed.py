"""Speed of the forecast engine: one organisation cold, and the nightly batch.

Run: ``.venv/bin/python bench/forecast_speed.py [--batch-series 400] [--full]`` (no Django needed).

1. Cold: a fresh Python process imports the engine and forecasts one organisation's 10 services
   (24-month horizon, levels 65/80/95). Reported: import time, the 10 forecasts, and the total.
2. Batch: the nightly job for 1,000 organisations x 10 services = 10,000 series, on a pool of 2 worker
   processes (one per core). By default a sample of ``--batch-series`` series is timed and the rate is
   extrapolated to 10,000 (stated as such); ``--full`` runs all 10,000.

Synthetic services are cost-like monthly series (level, growth, optional yearly seasonality, noise,
occasional step changes) with history lengths cycling through 6, 12, 18, 24, 36, 48 and 60 months.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

LENGTHS = (6, 12, 18, 24, 36, 48, 60)
HORIZON = 24
LEVELS = (65, 80, 95)
TARGET_COLD_S = 1.0
TARGET_BATCH_S = 600.0
BATCH_SERIES = 10_000


def service_series(seed: int) -> list[tuple[dt.date, float]]:
    rng = np.random.default_rng(seed)
    n = LENGTHS[seed % len(LENGTHS)]
    t = np.arange(n)
    level = rng.uniform(50, 20_000)
    growth = rng.normal(0.01, 0.02)
    season = rng.uniform(0, 0.2) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi)) if rng.random() < 0.6 else 0
    log_y = np.log(level) + growth * t + season + rng.normal(0, rng.uniform(0.02, 0.15), n)
    if rng.random() < 0.3:
        log_y[rng.integers(1, n) :] += rng.normal(0, 0.2)
    start = 2026 * 12 - n
    return [
        (dt.date((start + i) // 12, (start + i) % 12 + 1, 1), round(float(v), 2)) for i, v in enumerate(np.exp(log_y))
    ]


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the Stan binaries run as child processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _one(seed: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one forecast in this worker."""
    from forecasting.engine import forecast

    series = service_series(seed)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    forecast(series, horizon=HORIZON, levels=LEVELS)
    return time.perf_counter() - started, _cpu_seconds() - cpu


def _load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def cold_child() -> None:
    """Runs in a fresh interpreter: import + 10 services, printed as 'import_s total_s per-service...'."""
    started = time.perf_counter()
    from forecasting.engine import forecast

    imported = time.perf_counter()
    series = [service_series(seed) for seed in range(10)]
    cpu = _cpu_seconds()
    begin = time.perf_counter()
    for s in series:
        forecast(s, horizon=HORIZON, levels=LEVELS)
    done = time.perf_counter()
    print(f"{imported - started:.4f} {done - begin:.4f} {done - started:.4f} {_cpu_seconds() - cpu:.4f}")


def daily_bands(services: int = 10, days: int = 14, history: int = 150) -> None:
    """Anomaly detection after an import: every service's newest ``days`` days judged against its daily band,
    one ``expected_band`` call per day (the old path) against one ``expected_bands`` pass per service."""
    from forecasting.engine import expected_band, expected_bands

    start = dt.date(2026, 1, 1)
    rng = np.random.default_rng(7)
    week = np.array([1.0, 1.05, 0.98, 1.02, 1.1, 0.4, 0.35])
    data = []
    for _ in range(services):
        level = rng.uniform(50, 5000)
        data.append(
            {start + dt.timedelta(days=i): float(level * week[i % 7] * rng.lognormal(0, 0.05)) for i in range(history)}
        )
    judged = [start + dt.timedelta(days=i) for i in range(history - days, history)]
    print(f"\n## Daily anomaly bands: {services} services x {days} days ({history} days of history; load {_load()})\n")
    for label, run in (
        ("one expected_band per day", lambda d: [expected_band(d, at=day, level=95, freq="day") for day in judged]),
        ("one expected_bands pass per service", lambda d: expected_bands(d, at=judged, level=95, freq="day")),
    ):
        run(data[0])  # warm
        cpu = _cpu_seconds()
        began = time.perf_counter()
        for d in data:
            run(d)
        print(
            f"- {label}: {(time.perf_counter() - began) * 1000:.0f} ms wall, {(_cpu_seconds() - cpu) * 1000:.0f} ms CPU"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-series", type=int, default=400, help="0 = cold measurement only")
    parser.add_argument("--full", action="store_true", help="run all 10,000 series")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child()
        return

    print("# Forecast speed benchmark\n")
    print(f"Run {dt.datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} CPUs visible.")
    print(f"Synthetic services: history lengths cycling {LENGTHS} months; horizon {HORIZON}; levels {LEVELS}.\n")

    print(f"## Cold: fresh process, 10 services ({args.cold_runs} runs; load average {_load()})\n")
    rows = []
    for _ in range(args.cold_runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, os.path.abspath(__file__), "--cold-child"], capture_output=True, text=True, check=True
        )
        rows.append([float(x) for x in out.stdout.split()])
    imports = [r[0] for r in rows]
    engine = [r[1] for r in rows]
    totals = [r[2] for r in rows]
    print("| run | import engine (s) | 10 forecasts (s) | total (s) | CPU of the 10 forecasts (s) |")
    print("|---:|---:|---:|---:|---:|")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} |")
    print(
        f"\nMedian: import {statistics.median(imports):.3f} s, 10 forecasts {statistics.median(engine):.3f} s, "
        f"total {statistics.median(totals):.3f} s (target ≤ {TARGET_COLD_S:.0f} s for the engine part; "
        f"max {max(engine):.3f} s); CPU of the 10 forecasts (process + its Stan children, over 2 cores): median "
        f"{statistics.median(r[3] for r in rows):.3f} s."
    )

    daily_bands()

    count = BATCH_SERIES if args.full else args.batch_series
    if count <= 0:
        return
    print(f"\n## Batch: {count} series on 2 worker processes\n")
    print(f"- load average before: {_load()} (other work on the machine slows the wall-clock figure)")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.map(_one, range(10_000_000, 10_000_002))  # warm both workers (imports), not timed
        started = time.perf_counter()
        results = pool.map(_one, range(count), chunksize=8)
        wall = time.perf_counter() - started
    print(f"- load average after: {_load()}")
    per_series = [r[0] for r in results]
    cpu = [r[1] for r in results]
    rate = count / wall
    projected = BATCH_SERIES / rate
    cpu_projected = sum(cpu) / count * BATCH_SERIES / 2
    print(f"- wall time {wall:.1f} s for {count} series = {rate:.1f} series/s")
    print(
        f"- CPU per series (worker + its Stan processes): median {statistics.median(cpu) * 1000:.0f} ms, "
        f"mean {statistics.fmean(cpu) * 1000:.0f} ms"
    )
    print(
        f"- wall per series (in its worker): median {statistics.median(per_series) * 1000:.0f} ms, "
        f"p95 {np.percentile(per_series, 95) * 1000:.0f} ms, max {max(per_series) * 1000:.0f} ms"
    )
    by_len: dict[int, list[float]] = {}
    for seed, sec in zip(range(count), cpu, strict=True):
        by_len.setdefault(LENGTHS[seed % len(LENGTHS)], []).append(sec)
    print(
        "- median CPU per series by history length: "
        + ", ".join(f"{n} mo {statistics.median(v) * 1000:.0f} ms" for n, v in sorted(by_len.items()))
    )
    label = "measured" if args.full else f"extrapolated from {count} series"
    print(
        f"- 10,000 series (1,000 orgs x 10 services), wall clock: {projected:.0f} s = {projected / 60:.1f} min "
        f"({label}); target ≤ {TARGET_BATCH_S / 60:.0f} min"
    )
    print(
        f"- 10,000 series, CPU-bound on 2 idle cores (total CPU / 2): {cpu_projected:.0f} s = "
        f"{cpu_projected / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
