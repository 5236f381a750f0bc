"""Accuracy of the forecast engine against Prophet's defaults, seasonal naive and linear regression.

Run: ``.venv/bin/python bench/forecast_accuracy.py`` (no Django, no network: every series ships inside the
statsmodels and pmdarima wheels). Options: ``--windows`` adds the short-history study (36 months of training,
12 held out, at ``--per-dataset`` positions spread over the last 20 years of every dataset); ``--dev`` adds the
development hold-outs on which the engine's long-history rules were chosen (12 months held out, ending 12, 24
and 36 months before each dataset's test year, so no test month is involved; ``--dev-ends`` changes them).

What is measured, per method: MAPE (%) over the 12 held-out months and the share of held-out months inside
the 65/80/95 % bands. The baselines' bands:
- Prophet default: ``Prophet()`` with its defaults (additive seasonality, yearly on from two years, its
  ``fit()`` picks Newton below 100 points and L-BFGS above), 65/80/95 % percentiles of 1000 predictive samples
  (its default ``uncertainty_samples``; numpy seeded).
- seasonal naive: same month last year; normal band with sigma from the in-sample seasonal differences, growing
  with sqrt(1 + whole years ahead) (Hyndman & Athanasopoulos, FPP3 §5.5).
- linear regression: OLS of the value on the month index over the whole training window, with the classical
  Student-t prediction interval. (Our reading of the product spec's "linear regression"; no seasonality.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forecasting.engine import forecast

LEVELS = (65, 80, 95)
HOLDOUT = 12
_Z = {65: 0.934589, 80: 1.281552, 95: 1.959964}


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    months: list[dt.date]
    values: np.ndarray


def _month_list(start: dt.date, n: int) -> list[dt.date]:
    base = start.year * 12 + start.month - 1
    return [dt.date((base + i) // 12, (base + i) % 12 + 1, 1) for i in range(n)]


def load_datasets() -> list[Dataset]:
    """Every monthly series the two packages ship (quarterly, weekly-only, yearly and daily ones are skipped)."""
    warnings.simplefilter("ignore")
    import pmdarima.datasets as pm
    import statsmodels.api as sm

    out = []
    air = pm.load_airpassengers(as_series=True)
    out.append(Dataset("airpassengers", "pmdarima", _month_list(dt.date(1949, 1, 1), len(air)), air.to_numpy(float)))
    wine = pm.load_wineind(as_series=True)
    out.append(Dataset("wineind", "pmdarima", _month_list(dt.date(1980, 1, 1), len(wine)), wine.to_numpy(float)))
    sun = pm.load_sunspots(as_series=True)
    out.append(Dataset("sunspots", "pmdarima", _month_list(dt.date(1749, 1, 1), len(sun)), sun.to_numpy(float)))
    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    out.append(
        Dataset(
            "co2 (weekly→monthly mean)", "statsmodels", _month_list(dt.date(1958, 3, 1), len(co2)), co2.to_numpy(float)
        )
    )
    el = sm.datasets.elnino.load_pandas().data
    values = el.drop(columns=["YEAR"]).to_numpy(float).reshape(-1)
    out.append(
        Dataset(
            "elnino (sea surface °C)",
            "statsmodels",
            _month_list(dt.date(int(el["YEAR"].iloc[0]), 1, 1), len(values)),
            values,
        )
    )
    return out


# --------------------------------------------------------------------------- methods
Bands = dict[int, tuple[np.ndarray, np.ndarray]]


def method_engine(months: list[dt.date], y: np.ndarray, h: int) -> tuple[np.ndarray, Bands, str]:
    result = forecast(list(zip(months, y.tolist(), strict=True)), horizon=h, levels=LEVELS)
    mean = np.array([p.mean for p in result.points])
    bands = {
        lv: (np.array([p.bounds[lv][0] for p in result.points]), np.array([p.bounds[lv][1] for p in result.points]))
        for lv in LEVELS
    }
    return mean, bands, result.model


def method_prophet_default(months: list[dt.date], y: np.ndarray, h: int) -> tuple[np.ndarray, Bands, str]:
    import pandas as pd
    from prophet import Prophet

    df = pd.DataFrame({"ds": pd.to_datetime(months), "y": y})
    model = Prophet()
    model.fit(df)
    future = model.make_future_dataframe(periods=h, freq="MS", include_history=False)
    np.random.seed(0)
    yhat = model.predict(future)["yhat"].to_numpy()
    samples = model.predictive_samples(future)["yhat"]
    bands = {
        lv: (np.percentile(samples, 50 - lv / 2, axis=1), np.percentile(samples, 50 + lv / 2, axis=1)) for lv in LEVELS
    }
    return yhat, bands, "prophet-default"


def method_seasonal_naive(months: list[dt.date], y: np.ndarray, h: int) -> tuple[np.ndarray, Bands, str]:
    mean = np.array([y[-12 + (i % 12)] for i in range(h)])
    resid = y[12:] - y[:-12]
    sigma = float(np.sqrt(np.mean(resid**2)))
    k = np.array([(i // 12) + 1 for i in range(h)])
    bands = {lv: (mean - _Z[lv] * sigma * np.sqrt(k), mean + _Z[lv] * sigma * np.sqrt(k)) for lv in LEVELS}
    return mean, bands, "seasonal-naive"


def _t_quantile(level: int, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 200, df))


def method_linear(months: list[dt.date], y: np.ndarray, h: int) -> tuple[np.ndarray, Bands, str]:
    n = y.shape[0]
    x = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    s = math.sqrt(float(np.sum(resid**2)) / (n - 2))
    xf = np.arange(n, n + h, dtype=float)
    mean = slope * xf + intercept
    se = s * np.sqrt(1 + 1 / n + (xf - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
    bands = {lv: (mean - _t_quantile(lv, n - 2) * se, mean + _t_quantile(lv, n - 2) * se) for lv in LEVELS}
    return mean, bands, "linear"


METHODS: dict[str, Callable[[list[dt.date], np.ndarray, int], tuple[np.ndarray, Bands, str]]] = {
    "engine": method_engine,
    "prophet_default": method_prophet_default,
    "seasonal_naive": method_seasonal_naive,
    "linear_regression": method_linear,
}


@dataclass
class Score:
    ape: list[float]
    inside: dict[int, list[bool]]
    seconds: float
    models: list[str]


def evaluate(train_m: list[dt.date], train_y: np.ndarray, actual: np.ndarray, method: str, score: Score) -> None:
    start = time.perf_counter()
    mean, bands, model = METHODS[method](train_m, train_y, actual.shape[0])
    score.seconds += time.perf_counter() - start
    score.models.append(model)
    nonzero = actual != 0
    score.ape.extend((np.abs(actual - mean)[nonzero] / np.abs(actual[nonzero]) * 100).tolist())
    for lv in LEVELS:
        lo, hi = bands[lv]
        score.inside[lv].extend(((actual >= lo) & (actual <= hi)).tolist())


def new_score() -> Score:
    return Score(ape=[], inside={lv: [] for lv in LEVELS}, seconds=0.0, models=[])


def print_table(title: str, rows: dict[str, dict[str, Score]]) -> dict[str, Score]:
    print(f"\n## {title}\n")
    methods = list(METHODS)
    print("| dataset | " + " | ".join(f"{m} MAPE" for m in methods) + " | engine model |")
    print("|---|" + "---:|" * len(methods) + "---|")
    pooled = {m: new_score() for m in methods}
    for name, per_method in rows.items():
        cells = []
        for m in methods:
            sc = per_method[m]
            cells.append(f"{statistics.fmean(sc.ape):.2f}")
            pooled[m].ape.extend(sc.ape)
            pooled[m].seconds += sc.seconds
            for lv in LEVELS:
                pooled[m].inside[lv].extend(sc.inside[lv])
        models = per_method["engine"].models
        shown = models[0] if len(models) == 1 else f"{len(set(models))} distinct over {len(models)} windows"
        print(f"| {name} | " + " | ".join(cells) + f" | {shown} |")
    means = [statistics.fmean(statistics.fmean(per[m].ape) for per in rows.values()) for m in methods]
    print("| **mean of datasets** | " + " | ".join(f"**{v:.2f}**" for v in means) + " | |")
    print("\nPooled coverage of the held-out months (target: 65, 80±7, 95±5) and fitting time:\n")
    print("| method | held-out months | 65 % | 80 % | 95 % | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in methods:
        sc = pooled[m]
        cov = [100 * statistics.fmean(sc.inside[lv]) for lv in LEVELS]
        print(f"| {m} | {len(sc.inside[80])} | " + " | ".join(f"{c:.1f}" for c in cov) + f" | {sc.seconds:.1f} |")
    print("\nPer-dataset coverage 65/80/95 (engine | prophet default):\n")
    for name, per_method in rows.items():
        e = per_method["engine"]
        p = per_method["prophet_default"]
        ce = "/".join(f"{100 * statistics.fmean(e.inside[lv]):.0f}" for lv in LEVELS)
        cp = "/".join(f"{100 * statistics.fmean(p.inside[lv]):.0f}" for lv in LEVELS)
        print(f"- {name}: engine {ce} | prophet default {cp}")
    return pooled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", action="store_true", help="add the 36-month-window study")
    parser.add_argument("--per-dataset", type=int, default=8, help="windows per dataset (default 8)")
    parser.add_argument("--train-months", type=int, default=36)
    parser.add_argument("--dev", action="store_true", help="add the development hold-outs (before the test year)")
    parser.add_argument(
        "--dev-ends",
        default="12,24,36",
        help="months before the test year at which dev hold-outs end (default 12,24,36)",
    )
    args = parser.parse_args()
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")

    datasets = load_datasets()
    print("# Forecast accuracy benchmark")
    print(
        f"\nRun {dt.datetime.now().isoformat(timespec='seconds')}; hold-out = last {HOLDOUT} months; levels {LEVELS}."
    )
    print("\nData (monthly series shipped inside the statsmodels / pmdarima wheels):\n")
    for d in datasets:
        print(f"- {d.name} [{d.source}]: {len(d.values)} months, {d.months[0]:%Y-%m} .. {d.months[-1]:%Y-%m}")

    rows: dict[str, dict[str, Score]] = {}
    for d in datasets:
        rows[d.name] = {}
        for m in METHODS:
            sc = new_score()
            evaluate(d.months[:-HOLDOUT], d.values[:-HOLDOUT], d.values[-HOLDOUT:], m, sc)
            rows[d.name][m] = sc
    print_table("Full history, last 12 months held out", rows)

    if args.dev:
        offsets = [int(part) for part in args.dev_ends.split(",")]
        rows_d: dict[str, dict[str, Score]] = {}
        for d in datasets:
            rows_d[d.name] = {m: new_score() for m in METHODS}
            for offset in offsets:
                end = len(d.values) - offset
                tm, ty = d.months[: end - HOLDOUT], d.values[: end - HOLDOUT]
                for m in METHODS:
                    evaluate(tm, ty, d.values[end - HOLDOUT : end], m, rows_d[d.name][m])
        print(
            f"\nDevelopment hold-outs: {len(datasets) * len(offsets)} hold-outs of {HOLDOUT} months, ending "
            f"{', '.join(map(str, offsets))} months before each dataset's test year (full history before each)."
        )
        print_table("Development hold-outs (full history before each)", rows_d)

    if args.windows:
        train = args.train_months
        rows_w: dict[str, dict[str, Score]] = {}
        total = 0
        per_ds = args.per_dataset
        for d in datasets:
            n = len(d.values)
            span = train + HOLDOUT
            # Window ends spread evenly over the last part of the series, newest first (at most 20 years back).
            last_end = n
            first_end = max(span, n - 240)
            ends = sorted({round(float(e)) for e in np.linspace(first_end, last_end, per_ds)})
            rows_w[d.name] = {m: new_score() for m in METHODS}
            for end in ends:
                lo = end - span
                tm, ty = d.months[lo : end - HOLDOUT], d.values[lo : end - HOLDOUT]
                actual = d.values[end - HOLDOUT : end]
                for m in METHODS:
                    evaluate(tm, ty, actual, m, rows_w[d.name][m])
                total += 1
        print(
            f"\nShort-history windows: {total} windows of {train} training + {HOLDOUT} held-out months "
            f"({per_ds} per dataset, ends spread over each dataset's last 20 years)."
        )
        print_table(f"{train}-month windows, next 12 months held out", rows_w)


if __name__ == "__main__":
    main()
