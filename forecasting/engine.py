"""Monthly cost forecasts with calibrated bands: pure functions, no Django (see docs/forecasting-engine.md).

Public API::

    forecast(series, *, horizon, levels=(65, 80, 95), missing="error") -> Forecast
    expected_band(series, *, at, level=95, freq="month", missing="error") -> ExpectedBand
    NotEnoughData, ALLOWED_HORIZONS, ALLOWED_LEVELS

How a forecast is made, in one paragraph: the candidates are Prophet (L-BFGS, multiplicative yearly
seasonality of order 3), ETS and the seasonal naive forecast (naive below 24 months), plus an autoregression
from eight years and the spec's linear regression from ten. Each candidate is refitted at up to four rolling
origins at the end of the history (eight from ten years) and forecasts the months that follow; those backtest
errors choose the model (an inverse-error weighted blend of the close ones on a four-origin backtest, the
single best candidate on an eight-origin one) and calibrate the bands: the relative forecast errors, normalised for how they grow with the months ahead, give the band
half-width per level by a conformal quantile (Student-t where the backtest is too short for one). Bands are
therefore as wide as the errors this series actually showed, not as wide as a model believes it is.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import numpy as np

from forecasting.engine_models import autoregressive, ets_run, naive, seasonal_naive
from forecasting.engine_prophet import prophet_fit_many

__all__ = [
    "ALLOWED_HORIZONS",
    "ALLOWED_LEVELS",
    "MIN_MONTHS",
    "SEASONAL_MIN_MONTHS",
    "STABLE_THRESHOLD",
    "Change",
    "ExpectedBand",
    "Forecast",
    "ForecastPoint",
    "NotEnoughData",
    "Trend",
    "expected_band",
    "expected_bands",
    "forecast",
    "normalize_series",
    "validate_request",
]

ALLOWED_HORIZONS: tuple[int, ...] = (3, 6, 12, 24)
ALLOWED_LEVELS: tuple[int, ...] = (65, 80, 95)
MIN_MONTHS = 3
# Below two years a yearly pattern is one observation per calendar month: indistinguishable from noise.
SEASONAL_MIN_MONTHS = 24
YEARLY_ORDER = 3
# Backtest fits of a seasonal series train on 24 months, or down to 18 (one and a half cycles) when the history
# is shorter than 36 months: otherwise a 24-35 month history would have a thin backtest or none.
SEASONAL_MIN_TRAIN = 18
# Prophet on a handful of points is degenerate (a changepoint lets it fit them exactly, the noise scale goes
# to zero and Stan's optimisers can run for seconds): below this many months it is not a candidate.
PROPHET_MIN_MONTHS = 6
# A trend below 1 % of the recent monthly level per month (~12 %/year) is reported as "stable".
STABLE_THRESHOLD = 0.01

MAX_ORIGINS = 4
MAX_BACKTEST_HORIZON = 12
# Histories of ten years or more get up to eight origins (see _plan_backtest) and bands without the 1.2 widening
# below (chosen on hold-outs that end 12-36 months before the benchmark's test year, docs/forecasting-engine.md).
LONG_HISTORY_MONTHS = 120
LONG_MAX_ORIGINS = 8
LONG_BACKTEST_WIDENING = 1.0
# The autoregressive candidate needs enough months for its yearly lags (orders up to 25): eight years.
AR_MIN_MONTHS = 96
# The product spec's linear regression (OLS of the value on the month index over the training window) is a
# candidate where the backtest is long enough to choose a single model (ADR 0016): ten years.
LINEAR_MIN_MONTHS = LONG_HISTORY_MONTHS
# Band calibration (tuned on seeded synthetic cost series and on 24/36/60-month windows of the benchmark
# datasets, see docs/forecasting-engine.md):
# - every band x 1.2: the same few backtest origins that calibrate the band also chose the model, so their
#   errors are optimistic;
BAND_WIDENING = 1.2
# - histories under 36 months x 1.25 more: their backtests are thin and start from shorter training windows;
THIN_BACKTEST_MONTHS = 36
SHORT_HISTORY_WIDENING = 1.25
# - with fewer than 30 backtest errors the conformal quantile is noisy: a Student-t band on their RMS, with
#   3 degrees of freedom per origin beyond the first, is its floor;
PARAMETRIC_FLOOR_BELOW = 30
DF_PER_ORIGIN = 3.0
# - error variance grows like 1 + g (h - 1) with the months ahead h; g is estimated per series, shrunk
#   towards 0.5 with the weight of 10 errors, at most 2.
GROWTH_PRIOR = 0.5
GROWTH_PRIOR_WEIGHT = 10.0
GROWTH_MAX = 2.0
# A flat history (a fixed subscription) has no backtest error at all, and a zero-width band is degenerate for
# callers (a cent of rounding is "outside", scores divide by zero): the 80 % band is at least +-0.1 % one month
# ahead (other levels in proportion). Kept tiny so that smooth series (co2 in the benchmark, ~0.1 % errors)
# are not widened by it.
MIN_HALF_WIDTH_80 = 0.001
# Bands are capped at 10x / 0.1x the forecast: past that, a few volatile months extrapolated over two years give
# numbers (millions for a series of three) that inform nobody. The cap is reported in Forecast.notes.
MAX_BAND_FACTOR = 10.0
# Bands of a history too short for any backtest come from its month-to-month volatility, widened,
# and never narrower than this relative half-width for one month ahead at 80 %.
NO_BACKTEST_WIDENING = 1.5
NO_BACKTEST_MIN_SCALE = 0.10
# Candidates whose backtest error exceeds the best one's by more than this factor get no weight.
BLEND_CUTOFF = 1.5
# With the eight-origin backtest of a long history (up to 96 errors over eight years) the backtest winner is used
# alone instead of a blend (ADR 0016: on the development hold-outs 6.60 mean MAPE against 7.15 for the blend).

_Z = {65: 0.934589, 80: 1.281552, 95: 1.959964}  # standard normal two-sided quantiles
_T_SMALL_DF = {65: (1.6319, 1.2096), 80: (3.0777, 1.8856), 95: (12.7062, 4.3027)}  # Student t, df 1 and 2
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_DAY_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")

Missing = Literal["error", "zero"]


class NotEnoughData(ValueError):
    """The history is too short to forecast (fewer than ``MIN_MONTHS`` months)."""


@dataclass(frozen=True)
class ForecastPoint:
    month: dt.date  # first day of the month
    mean: float
    bounds: Mapping[int, tuple[float, float]]  # level -> (lower, upper), nested 95 ⊇ 80 ⊇ 65

    @property
    def label(self) -> str:
        return self.month.strftime("%Y-%m")


@dataclass(frozen=True)
class Trend:
    direction: Literal["increasing", "decreasing", "stable"]
    slope_per_month: float  # in the series' unit per month
    threshold: float  # |slope| below this (same unit) is "stable": STABLE_THRESHOLD x recent mean level
    basis: Literal["year_over_year", "linear_fit"]


@dataclass(frozen=True)
class Change:
    from_month: dt.date
    to_month: dt.date
    absolute: float
    percent: float | None  # None when the earlier month is zero


@dataclass(frozen=True)
class Forecast:
    points: tuple[ForecastPoint, ...]
    levels: tuple[int, ...]
    model: str  # "prophet", "ets", "seasonal_naive", "naive", "ar", "linear" or "blend(prophet=0.6,ets=0.4)"
    weights: Mapping[str, float]
    backtest_mape: float | None  # percent, of the chosen model on the rolling-origin backtest
    coverage: Mapping[int, float | None]  # measured on the backtest, leave-one-origin-out
    trend: Trend
    mom_change: Change | None  # last observed month against the one before
    history_months: int
    seasonal: bool
    backtest_origins: int
    backtest_scores: Mapping[str, float] = field(default_factory=dict)  # WAPE per candidate, percent
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectedBand:
    at: dt.date
    expected: float
    lower: float
    upper: float
    level: int
    actual: float | None
    model: str

    @property
    def outside(self) -> bool | None:
        """Whether the actual value falls outside the band (None when there is no actual value)."""
        if self.actual is None:
            return None
        return not (self.lower <= self.actual <= self.upper)


# --------------------------------------------------------------------------- input checking


def validate_request(*, horizon: object, levels: Iterable[object]) -> tuple[int, tuple[int, ...]]:
    """Horizon and levels as the engine accepts them, or a ValueError that can be shown to a user."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon not in ALLOWED_HORIZONS:
        allowed = ", ".join(str(h) for h in ALLOWED_HORIZONS)
        raise ValueError(f"horizon must be one of {allowed} months, got {horizon!r}")
    clean: set[int] = set()
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int) or level not in ALLOWED_LEVELS:
            allowed = ", ".join(str(lv) for lv in ALLOWED_LEVELS)
            raise ValueError(f"interval levels must be among {allowed}, got {level!r}")
        clean.add(level)
    if not clean:
        raise ValueError("at least one interval level is required")
    return horizon, tuple(sorted(clean))


def _as_float(value: object, *, key: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | np.integer | np.floating):
        raise ValueError(f"value for {key} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"value for {key} is not a finite number: {value!r}")
    return number


def _as_month(key: object) -> dt.date:
    if isinstance(key, dt.datetime | dt.date):
        return dt.date(key.year, key.month, 1)
    if isinstance(key, str):
        match = _MONTH_RE.match(key.strip())
        if match and 1 <= int(match.group(2)) <= 12:
            return dt.date(int(match.group(1)), int(match.group(2)), 1)
    raise ValueError(f"month must be a date or a 'YYYY-MM' string, got {key!r}")


def _as_day(key: object) -> dt.date:
    if isinstance(key, dt.datetime):
        return key.date()
    if isinstance(key, dt.date):
        return key
    if isinstance(key, str) and _DAY_RE.match(key.strip()):
        return dt.date.fromisoformat(key.strip())
    raise ValueError(f"day must be a date or a 'YYYY-MM-DD' string, got {key!r}")


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_index(month: dt.date) -> int:
    return month.year * 12 + month.month - 1


def _pairs(series: Mapping[object, object] | Iterable[tuple[object, object]]) -> list[tuple[object, object]]:
    items = series.items() if isinstance(series, Mapping) else series
    pairs = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(f"each series item must be a (month, value) pair, got {item!r}")
        pairs.append((item[0], item[1]))
    return pairs


def normalize_series(
    series: Mapping[object, object] | Iterable[tuple[object, object]], *, missing: Missing = "error"
) -> tuple[list[dt.date], np.ndarray]:
    """Months (first of month, ascending, contiguous) and float values.

    Duplicated months are an error. Gaps are an error unless ``missing="zero"``: in a cost history a month
    without rows usually means no spend, but it can also mean the import failed, and only the caller knows
    which, so the engine does not guess.
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero', got {missing!r}")
    values: dict[dt.date, float] = {}
    for key, value in _pairs(series):
        month = _as_month(key)
        if month in values:
            raise ValueError(f"duplicate month {month:%Y-%m}")
        values[month] = _as_float(value, key=f"{month:%Y-%m}")
    if not values:
        return [], np.zeros(0)
    first, last = min(values), max(values)
    months = [_add_months(first, i) for i in range(_month_index(last) - _month_index(first) + 1)]
    gaps = [m for m in months if m not in values]
    if gaps and missing == "error":
        shown = ", ".join(f"{m:%Y-%m}" for m in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
        raise ValueError(f"missing months {shown} (pass missing='zero' if they had no spend)")
    return months, np.array([values.get(m, 0.0) for m in months], dtype=float)


# --------------------------------------------------------------------------- backtest and calibration


@dataclass(frozen=True)
class _Backtest:
    origins: tuple[int, ...]
    steps: tuple[int, ...]  # months evaluated after each origin


def _plan_backtest(*, n: int, horizon: int, seasonal: bool) -> _Backtest:
    """Up to four origins at the end of the history, spaced to use every month that can be held out."""
    if seasonal:
        min_train = min(max(n - MAX_BACKTEST_HORIZON, SEASONAL_MIN_TRAIN), SEASONAL_MIN_MONTHS)
    else:
        min_train = max(MIN_MONTHS, math.ceil(n / 2))
    available = n - min_train
    if available < 1:
        return _Backtest(origins=(), steps=())
    max_h = min(horizon, MAX_BACKTEST_HORIZON, available)
    count = min(MAX_ORIGINS, available)
    if n >= LONG_HISTORY_MONTHS:
        # Long histories: more origins, a horizon apart, so the backtest spans several years (a regime that
        # lasted the last four years does not decide alone) and calibrates the bands on ~100 errors.
        count = max(count, min(LONG_MAX_ORIGINS, available // max_h))
    spacing = max(1, min(max_h, available // count))
    origins = tuple(sorted(n - j * spacing for j in range(1, count + 1)))
    steps = tuple(min(max_h, n - o) for o in origins)
    return _Backtest(origins=origins, steps=steps)


def _t_quantile(level: int, df: float) -> float:
    """Two-sided Student-t quantile: a table below 3 degrees of freedom, the Cornish-Fisher expansion above
    (within 0.03 of scipy's from df = 3; scipy.stats would cost 0.3 s of import time)."""
    if df < 3:
        return _T_SMALL_DF[level][0 if df < 2 else 1]
    z = _Z[level]
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def _relative_errors(actual: np.ndarray, predicted: np.ndarray, *, log_scale: bool, floor: float) -> np.ndarray:
    if log_scale:
        return np.log(actual / np.maximum(predicted, floor))
    return (actual - predicted) / np.maximum(np.abs(predicted), floor)


def _error_growth(errors: np.ndarray, ahead: np.ndarray) -> float:
    """How fast the error variance grows with the months ahead: var(h) ∝ 1 + growth x (h - 1).

    Least squares of the squared errors on h - 1, shrunk towards 0.5 (between white noise, 0, and a random
    walk, 1) by the weight of ten errors, so that a short backtest cannot claim bands that stop widening.
    """
    x = ahead.astype(float) - 1.0
    m = errors.shape[0]
    sq = errors**2
    estimate = GROWTH_PRIOR
    if m >= 3 and np.var(x) > 0 and sq.mean() > 0:
        slope = float(np.cov(x, sq, bias=True)[0, 1] / np.var(x))
        intercept = float(sq.mean() - slope * x.mean())
        estimate = GROWTH_MAX if intercept <= 0 else min(max(slope / intercept, 0.0), GROWTH_MAX)
    return (m * estimate + GROWTH_PRIOR_WEIGHT * GROWTH_PRIOR) / (m + GROWTH_PRIOR_WEIGHT)


def _half_widths(errors: np.ndarray, *, n_origins: int, levels: Sequence[int], widen: float) -> dict[int, float]:
    """Band half-width (in scaled-error units) per level.

    A split-conformal quantile of the absolute scaled errors. Where there are too few of them for the level, or
    fewer than PARAMETRIC_FLOOR_BELOW, a Student-t band on their RMS is the fallback / floor, with degrees of
    freedom counted per backtest origin: errors from one origin move together, so the origins, not the
    errors, are the independent samples.
    """
    a = np.sort(np.abs(errors))
    m = a.shape[0]
    rms = float(np.sqrt(np.mean(errors**2))) if m else 0.0
    out: dict[int, float] = {}
    for level in levels:
        parametric = _t_quantile(level, df=max(1, n_origins - 1) * DF_PER_ORIGIN) * rms
        rank = math.ceil((m + 1) * level / 100)
        conformal = float(a[rank - 1]) if rank <= m else parametric
        out[level] = (max(conformal, parametric) if m < PARAMETRIC_FLOOR_BELOW else conformal) * widen
    for level in out:
        out[level] = max(out[level], MIN_HALF_WIDTH_80 * _Z[level] / _Z[80])
    # Nested bands: 95 ⊇ 80 ⊇ 65 even when the empirical quantiles tie.
    running = 0.0
    for level in sorted(out):
        running = max(running, out[level])
        out[level] = running
    return out


# --------------------------------------------------------------------------- the forecast


def forecast(
    series: Mapping[object, object] | Iterable[tuple[object, object]],
    *,
    horizon: int,
    levels: Iterable[int] = ALLOWED_LEVELS,
    missing: Missing = "error",
) -> Forecast:
    """Forecast the ``horizon`` months after the series, with bands at the given levels.

    ``series``: ``{month: value}`` or ``[(month, value), ...]``, months as dates or ``'YYYY-MM'`` strings,
    values as numbers (``Decimal`` welcome). Negative values (credits) are accepted; bands and means are
    clipped at zero only when the whole history is non-negative.
    Raises ``NotEnoughData`` below three months and ``ValueError`` for an invalid horizon, level or series.
    """
    horizon, level_tuple = validate_request(horizon=horizon, levels=levels)
    months, y = normalize_series(series, missing=missing)
    if y.shape[0] < MIN_MONTHS:
        raise NotEnoughData(f"not enough data: {y.shape[0]} month(s) of history, at least {MIN_MONTHS} needed")
    return _forecast_arrays(months=months, y=y, horizon=horizon, levels=level_tuple)


def _days(months: Sequence[dt.date]) -> np.ndarray:
    epoch = dt.date(1970, 1, 1)
    return np.array([(m - epoch).days for m in months], dtype=float)


@dataclass(frozen=True)
class _Candidates:
    finals: dict[str, np.ndarray]  # name -> forecast of the horizon
    backtests: dict[str, np.ndarray]  # name -> backtest forecasts, all origins concatenated
    notes: tuple[str, ...]


def _run_candidates(*, months: list[dt.date], y: np.ndarray, plan: _Backtest, horizon: int) -> _Candidates:
    """Every candidate's final forecast and its forecasts at every backtest origin."""
    n = y.shape[0]
    seasonal = n >= SEASONAL_MIN_MONTHS
    finals: dict[str, np.ndarray] = {}
    backtests: dict[str, np.ndarray] = {}
    notes: list[str] = []
    windows = list(zip(plan.origins, plan.steps, strict=True))

    all_days = _days(months)
    if min([n, *plan.origins]) >= PROPHET_MIN_MONTHS:
        jobs = [(all_days[:o], y[:o]) for o, _ in windows] + [(all_days, y)]
        fits = prophet_fit_many(jobs, yearly_order=YEARLY_ORDER if seasonal else 0)
        final_fit = fits[-1]
        if final_fit is not None and all(f is not None for f in fits):
            future = [_add_months(months[-1], h) for h in range(1, horizon + 1)]
            finals["prophet"] = final_fit.predict(_days(future))
            backtests["prophet"] = _concat(
                [
                    fit.predict(all_days[o : o + s])
                    for fit, (o, s) in zip(fits[:-1], windows, strict=True)
                    if fit is not None
                ]
            )
        else:
            notes.append("prophet failed to fit; left out")
    else:
        notes.append(f"prophet needs {PROPHET_MIN_MONTHS} months in every fit; left out")

    ets = ets_run(y, seasonal=seasonal, origins=plan.origins, backtest_horizons=plan.steps, horizon=horizon)
    finals["ets"] = ets.forecast
    backtests["ets"] = _concat(ets.backtests)
    if seasonal:
        finals["seasonal_naive"] = seasonal_naive(y, steps=horizon)
        backtests["seasonal_naive"] = _concat([seasonal_naive(y[:o], steps=s) for o, s in windows])
    else:
        finals["naive"] = naive(y, steps=horizon)
        backtests["naive"] = _concat([naive(y[:o], steps=s) for o, s in windows])
    if n >= AR_MIN_MONTHS:
        finals["ar"] = autoregressive(y, steps=horizon)
        backtests["ar"] = _concat([autoregressive(y[:o], steps=s) for o, s in windows])
    if n >= LINEAR_MIN_MONTHS:
        finals["linear"] = linear_regression(y, steps=horizon)
        backtests["linear"] = _concat([linear_regression(y[:o], steps=s) for o, s in windows])
    return _Candidates(finals=finals, backtests=backtests, notes=tuple(notes))


def linear_regression(y: np.ndarray, *, steps: int) -> np.ndarray:
    """The product spec's linear regression: OLS of the value on the month index over the whole history,
    extended ``steps`` months. No seasonality and no adaptation: it wins a backtest only where the series is a
    line plus noise (or a long cycle whose best guess a year out is its long-run level)."""
    y = np.asarray(y, dtype=float)
    x = np.arange(y.shape[0], dtype=float)
    x_mean = x.mean()
    slope = float(np.dot(x - x_mean, y - y.mean()) / np.dot(x - x_mean, x - x_mean))
    intercept = float(y.mean() - slope * x_mean)
    return intercept + slope * np.arange(y.shape[0], y.shape[0] + steps, dtype=float)


def _concat(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass(frozen=True)
class _Calibration:
    half_widths: dict[int, float]  # per level, for one month ahead, in relative units
    growth: float  # error variance grows like 1 + growth x (h - 1)
    coverage: dict[int, float | None]
    backtest_mape: float | None
    notes: tuple[str, ...] = ()


def _calibrate(
    *, y: np.ndarray, plan: _Backtest, actual: np.ndarray, predicted: np.ndarray, levels: tuple[int, ...], floor: float
) -> _Calibration:
    log_scale = bool(np.all(y > 0))
    widen = BAND_WIDENING * (1.0 if y.shape[0] >= THIN_BACKTEST_MONTHS else SHORT_HISTORY_WIDENING)
    if len(plan.origins) > MAX_ORIGINS:
        # Eight or more origins: ~100 errors over several years, the selection's optimism is small.
        widen = LONG_BACKTEST_WIDENING
    if not plan.origins:
        return _Calibration(
            half_widths=_volatility_half_widths(y, levels=levels, log_scale=log_scale, floor=floor),
            growth=1.0,  # a random walk: the variance grows by one month's variance per month
            coverage=dict.fromkeys(levels),
            backtest_mape=None,
            notes=("history too short for a backtest: bands from month-to-month volatility",),
        )
    ahead = _concat([np.arange(1, s + 1) for s in plan.steps])
    origin_of = _concat([np.full(s, i) for i, s in enumerate(plan.steps)])
    nonzero = actual != 0
    mape = float(np.mean(np.abs((actual - predicted)[nonzero] / actual[nonzero])) * 100) if nonzero.any() else None
    relative = _relative_errors(actual, predicted, log_scale=log_scale, floor=1e-9 if log_scale else floor)
    growth = _error_growth(relative, ahead)
    scaled = relative / np.sqrt(1.0 + growth * (ahead - 1))
    count = len(plan.origins)
    return _Calibration(
        half_widths=_half_widths(scaled, n_origins=count, levels=levels, widen=widen),
        growth=growth,
        coverage=_leave_one_origin_out(scaled, origin_of, n_origins=count, levels=levels, widen=widen),
        backtest_mape=mape,
    )


def _forecast_arrays(*, months: list[dt.date], y: np.ndarray, horizon: int, levels: tuple[int, ...]) -> Forecast:
    n = y.shape[0]
    seasonal = n >= SEASONAL_MIN_MONTHS
    non_negative = bool(np.all(y >= 0))
    log_scale = bool(np.all(y > 0))
    # Series that touch zero (intermittent spend) measure errors against their mean level, not a forecast of 0.
    floor = float(np.mean(np.abs(y))) or 1.0
    plan = _plan_backtest(n=n, horizon=horizon, seasonal=seasonal)
    candidates = _run_candidates(months=months, y=y, plan=plan, horizon=horizon)

    # Choose: inverse-squared-error weights among the candidates close to the best.
    actual = _concat([y[o : o + s] for o, s in zip(plan.origins, plan.steps, strict=True)])
    scores: dict[str, float] = {}
    denominator = float(np.sum(np.abs(actual)))
    if denominator > 0:
        for name, predicted in candidates.backtests.items():
            scores[name] = float(np.sum(np.abs(actual - predicted)) / denominator)
    weights = _weights(scores, candidates=list(candidates.finals), select_best=len(plan.origins) > MAX_ORIGINS)

    def combine(parts: Mapping[str, np.ndarray]) -> np.ndarray:
        combined = sum(w * parts[name] for name, w in weights.items())
        return np.maximum(combined, 0.0) if non_negative else combined

    mean = combine(candidates.finals)
    calibration = _calibrate(
        y=y, plan=plan, actual=actual, predicted=combine(candidates.backtests), levels=levels, floor=floor
    )

    # Beyond the months the backtest reached, the variance grows at least like a random walk's: those widths
    # are extrapolated, not measured.
    growth = calibration.growth
    months_ahead = np.arange(horizon, dtype=float)
    measured = np.minimum(months_ahead, max(max(plan.steps, default=0) - 1, 0))
    spread_factor = np.sqrt(1.0 + growth * measured + max(growth, 1.0) * (months_ahead - measured))
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    capped = False
    for level in levels:
        width = calibration.half_widths[level] * spread_factor
        if log_scale:
            limit = math.log(MAX_BAND_FACTOR)
            centre = np.maximum(mean, 1e-9)
        else:
            limit = MAX_BAND_FACTOR
        capped = capped or bool(np.any(width > limit))
        width = np.minimum(width, limit)
        if log_scale:
            lower, upper = centre * np.exp(-width), centre * np.exp(width)
        else:
            spread = width * np.maximum(np.abs(mean), floor)
            lower, upper = mean - spread, mean + spread
        if non_negative:
            lower = np.maximum(lower, 0.0)
        bounds[level] = (np.minimum(lower, mean), np.maximum(upper, mean))

    future = [_add_months(months[-1], h) for h in range(1, horizon + 1)]
    points = tuple(
        ForecastPoint(
            month=future[i],
            mean=float(mean[i]),
            bounds={level: (float(bounds[level][0][i]), float(bounds[level][1][i])) for level in levels},
        )
        for i in range(horizon)
    )
    return Forecast(
        points=points,
        levels=levels,
        model=_model_label(weights),
        weights=weights,
        backtest_mape=calibration.backtest_mape,
        coverage=calibration.coverage,
        trend=_trend(y),
        mom_change=_mom_change(months, y),
        history_months=n,
        seasonal=seasonal,
        backtest_origins=len(plan.origins),
        backtest_scores={name: round(score * 100, 3) for name, score in scores.items()},
        notes=candidates.notes + calibration.notes + (("bands capped at 10x the forecast",) if capped else ()),
    )


def _weights(scores: Mapping[str, float], *, candidates: Sequence[str], select_best: bool = False) -> dict[str, float]:
    """Inverse-squared-error weights among the candidates within BLEND_CUTOFF of the best backtest score, or
    the best candidate alone when ``select_best`` (a backtest long enough to tell the candidates apart)."""
    if not scores:
        # No backtest: nothing tells the models apart; Prophet if it fitted, else ETS.
        return {"prophet": 1.0} if "prophet" in candidates else {"ets": 1.0}
    best = min(scores.values())
    if best <= 0 or select_best:
        # Ties go to the earlier candidate (Prophet, ETS, the naive forecast, AR, linear regression).
        winner = min(scores, key=lambda k: (scores[k], candidates.index(k)))
        return {winner: 1.0}
    kept = {name: 1.0 / score**2 for name, score in scores.items() if score <= BLEND_CUTOFF * best}
    total = sum(kept.values())
    ordered = sorted(kept, key=lambda k: -kept[k])
    return {name: kept[name] / total for name in ordered}


def _model_label(weights: Mapping[str, float]) -> str:
    if len(weights) == 1:
        return next(iter(weights))
    return "blend(" + ",".join(f"{name}={w:.2f}" for name, w in weights.items()) + ")"


def _leave_one_origin_out(
    scaled: np.ndarray, origin_of: np.ndarray, *, n_origins: int, levels: Sequence[int], widen: float
) -> dict[int, float | None]:
    """Coverage of bands calibrated without each origin's errors, measured on that origin's errors."""
    if n_origins < 2:
        return dict.fromkeys(levels)
    hits = dict.fromkeys(levels, 0)
    for i in range(n_origins):
        held = origin_of == i
        half = _half_widths(scaled[~held], n_origins=n_origins - 1, levels=levels, widen=widen)
        for level in levels:
            hits[level] += int(np.sum(np.abs(scaled[held]) <= half[level]))
    total = scaled.shape[0]
    return {level: round(hits[level] / total, 4) for level in levels}


def _volatility_half_widths(y: np.ndarray, *, levels: Sequence[int], log_scale: bool, floor: float) -> dict[int, float]:
    steps = np.diff(np.log(y)) if log_scale else np.diff(y) / np.maximum(np.abs(y[:-1]), floor)
    rms = float(np.sqrt(np.mean(steps**2))) if steps.shape[0] else 0.0
    scale = max(rms, NO_BACKTEST_MIN_SCALE / _Z[80])
    return {
        level: max(_t_quantile(level, df=max(1, steps.shape[0])) * scale * NO_BACKTEST_WIDENING, 0.0)
        for level in levels
    }


def _trend(y: np.ndarray) -> Trend:
    n = y.shape[0]
    # Medians, so that one spike (a migration, a mistaken reservation) does not set the trend.
    if n >= SEASONAL_MIN_MONTHS:
        # Same month a year apart: the yearly pattern cancels, what is left is growth.
        slope = float(np.median(y[-12:] - y[-24:-12]) / 12)
        basis: Literal["year_over_year", "linear_fit"] = "year_over_year"
    else:
        # Theil-Sen: the median of the slopes between every pair of the last (up to) 12 months.
        window = y[-12:]
        i, j = np.triu_indices(window.shape[0], k=1)
        slope = float(np.median((window[j] - window[i]) / (j - i)))
        basis = "linear_fit"
    threshold = STABLE_THRESHOLD * float(np.mean(np.abs(y[-12:])))
    if slope > threshold:
        direction: Literal["increasing", "decreasing", "stable"] = "increasing"
    elif slope < -threshold:
        direction = "decreasing"
    else:
        direction = "stable"
    return Trend(direction=direction, slope_per_month=slope, threshold=threshold, basis=basis)


def _mom_change(months: Sequence[dt.date], y: np.ndarray) -> Change | None:
    if y.shape[0] < 2:
        return None
    before, after = float(y[-2]), float(y[-1])
    percent = None if before == 0 else (after - before) / abs(before) * 100
    return Change(from_month=months[-2], to_month=months[-1], absolute=after - before, percent=percent)


# --------------------------------------------------------------------------- anomaly support


def expected_band(
    series: Mapping[object, object] | Iterable[tuple[object, object]],
    *,
    at: dt.date | str,
    level: int = 95,
    freq: Literal["month", "day"] = "month",
    missing: Missing = "error",
) -> ExpectedBand:
    """The value the engine would have expected at ``at`` from the history before it, with its band.

    Only points strictly before ``at`` are used, so a spike at ``at`` cannot widen its own band. ``series``
    may contain ``at`` (its value is returned as ``actual``) and later points (ignored).
    Months use the full forecast engine (the band for the step ``at`` is ahead of the last earlier month).
    Days (``freq="day"``) use ETS with a weekly pattern on up to the last 120 days, and a conformal band of
    its one-day-ahead errors over the last 8 weeks (multi-day gaps scale it by sqrt(days)).
    """
    if level not in ALLOWED_LEVELS or isinstance(level, bool):
        raise ValueError(f"level must be one of {', '.join(map(str, ALLOWED_LEVELS))}, got {level!r}")
    if freq == "month":
        return _expected_band_month(series, at=_as_month(at), level=level, missing=missing)
    if freq == "day":
        return _expected_band_day(series, at=_as_day(at), level=level, missing=missing)
    raise ValueError(f"freq must be 'month' or 'day', got {freq!r}")


def _expected_band_month(series, *, at: dt.date, level: int, missing: Missing) -> ExpectedBand:
    pairs = [(_as_month(k), v) for k, v in _pairs(series)]
    actual = next((_as_float(v, key=f"{m:%Y-%m}") for m, v in pairs if m == at), None)
    months, y = normalize_series([(m, v) for m, v in pairs if m < at], missing=missing)
    if y.shape[0] < MIN_MONTHS:
        raise NotEnoughData(f"not enough data before {at:%Y-%m}: {y.shape[0]} month(s), at least {MIN_MONTHS}")
    steps = _month_index(at) - _month_index(months[-1])
    horizon = next((h for h in ALLOWED_HORIZONS if h >= steps), None)
    if horizon is None:
        raise ValueError(f"{at:%Y-%m} is more than {ALLOWED_HORIZONS[-1]} months after the history")
    result = _forecast_arrays(months=months, y=y, horizon=horizon, levels=(level,))
    point = result.points[steps - 1]
    lower, upper = point.bounds[level]
    return ExpectedBand(
        at=at, expected=point.mean, lower=lower, upper=upper, level=level, actual=actual, model=result.model
    )


DAILY_MIN_DAYS = 14
DAILY_MAX_DAYS = 120
DAILY_CALIBRATION_DAYS = 56


def _expected_band_day(series, *, at: dt.date, level: int, missing: Missing) -> ExpectedBand:
    band = _expected_bands_day(series, ats=[at], level=level, missing=missing)[0]
    if band is None:
        raise NotEnoughData(f"not enough data before {at.isoformat()}: fewer than {DAILY_MIN_DAYS} days")
    return band


def expected_bands(
    series: Mapping[object, object] | Iterable[tuple[object, object]],
    *,
    at: Iterable[dt.date | str],
    level: int = 95,
    freq: Literal["month", "day"] = "month",
    missing: Missing = "error",
) -> list[ExpectedBand | None]:
    """``expected_band`` for several points of one series at once, in the order given; ``None`` for a point
    without enough history before it.

    Days come from one ETS pass over the series (the filter is causal: the state, the parameter choice and the
    calibration errors for each day use only the days before it), so judging the 14 newest days of a service
    costs about one daily band instead of fourteen. The pass starts up to ``DAILY_MAX_DAYS`` before the
    earliest day asked; for a single day the result is exactly ``expected_band``'s.
    Months are forecast one by one (each is a full engine forecast from the months before it).
    """
    if level not in ALLOWED_LEVELS or isinstance(level, bool):
        raise ValueError(f"level must be one of {', '.join(map(str, ALLOWED_LEVELS))}, got {level!r}")
    if freq == "day":
        return _expected_bands_day(series, ats=[_as_day(a) for a in at], level=level, missing=missing)
    if freq != "month":
        raise ValueError(f"freq must be 'month' or 'day', got {freq!r}")
    pairs = _pairs(series)
    out: list[ExpectedBand | None] = []
    for month in [_as_month(a) for a in at]:
        try:
            out.append(_expected_band_month(pairs, at=month, level=level, missing=missing))
        except NotEnoughData:
            out.append(None)
    return out


DAILY_MIN_DAYS = 14
DAILY_MAX_DAYS = 120
DAILY_CALIBRATION_DAYS = 56


def _expected_bands_day(series, *, ats: Sequence[dt.date], level: int, missing: Missing) -> list[ExpectedBand | None]:
    values: dict[dt.date, float] = {}
    for key, value in _pairs(series):
        day = _as_day(key)
        if day in values:
            raise ValueError(f"duplicate day {day.isoformat()}")
        values[day] = _as_float(value, key=day.isoformat())
    known = sorted(values)
    out: list[ExpectedBand | None] = [None] * len(ats)
    # Only days with enough history before them take part (the earliest one sets where the pass starts).
    judged = [(i, at) for i, at in enumerate(ats) if sum(1 for d in known if d < at) >= DAILY_MIN_DAYS]
    if not judged:
        return out
    last_at = max(at for _, at in judged)
    first_at = min(at for _, at in judged)
    before_last = [d for d in known if d < last_at]
    span = (before_last[-1] - before_last[0]).days + 1
    days = [before_last[0] + dt.timedelta(days=i) for i in range(span)]
    gaps = [d for d in days if d not in values]
    if gaps and missing == "error":
        raise ValueError(
            f"missing days {', '.join(d.isoformat() for d in gaps[:5])} (pass missing='zero' if they had no spend)"
        )
    y_all = np.array([values.get(d, 0.0) for d in days])
    # Start DAILY_MAX_DAYS before the earliest judged day's last earlier day (as a single band would).
    last_before_first = max(d for d in known if d < first_at)
    start = max(0, (last_before_first - days[0]).days + 1 - DAILY_MAX_DAYS)
    y = y_all[start:]
    window = days[start:]
    origins, steps = [], []
    for _, at in judged:
        last_before = max(d for d in known if d < at)
        origin = (last_before - window[0]).days + 1
        origins.append(origin)
        steps.append((at - last_before).days)
    ets = ets_run(y, seasonal=True, origins=origins, backtest_horizons=steps, horizon=1, period=7)
    for (i, at), origin, step, path, idx in zip(judged, origins, steps, ets.backtests, ets.origin_choices, strict=True):
        past = y[:origin]
        expected = float(path[-1])
        errors = ets.all_errors[7:origin, idx][-DAILY_CALIBRATION_DAYS:]
        scale = float(np.mean(np.abs(past))) * 0.1 or 1.0
        if not ets.log_scale:
            errors = errors / np.maximum(np.abs(past[7:][-DAILY_CALIBRATION_DAYS:]), scale)
        half = _half_widths(errors, n_origins=max(2, errors.shape[0] // 7), levels=(level,), widen=1.0)[level]
        half *= math.sqrt(step)
        if ets.log_scale:
            lower, upper = expected * math.exp(-half), expected * math.exp(half)
        else:
            spread = half * max(abs(expected), scale)
            lower, upper = expected - spread, expected + spread
        if np.all(past >= 0):
            expected, lower = max(expected, 0.0), max(lower, 0.0)
        out[i] = ExpectedBand(
            at=at,
            expected=expected,
            lower=lower,
            upper=upper,
            level=level,
            actual=values.get(at),
            model=ets.description,
        )
    return out
