"""The forecast engine on synthetic series whose truth is known (no database needed)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from decimal import Decimal

import numpy as np
import pytest

from forecasting import engine
from forecasting.engine import ExpectedBand, Forecast, NotEnoughData, expected_band, forecast
from forecasting.engine_prophet import prophet_fit_many


def months_from(start: dt.date, n: int) -> list[dt.date]:
    base = start.year * 12 + start.month - 1
    return [dt.date((base + i) // 12, (base + i) % 12 + 1, 1) for i in range(n)]


def cost_truth(n: int, *, level: float = 1000.0, growth: float = 0.01, amplitude: float = 0.15) -> np.ndarray:
    """A noise-free cost curve: compound growth times a yearly pattern."""
    t = np.arange(n)
    return level * np.exp(growth * t) * (1 + amplitude * np.sin(2 * np.pi * t / 12))


def noisy(truth: np.ndarray, *, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return truth * np.exp(rng.normal(0, sigma, truth.shape[0]))


def as_series(values: np.ndarray, start: dt.date = dt.date(2021, 1, 1)) -> list[tuple[dt.date, float]]:
    return list(zip(months_from(start, len(values)), [float(v) for v in values], strict=True))


def assert_well_formed(result: Forecast, *, non_negative: bool = True) -> None:
    for point in result.points:
        previous = (point.mean, point.mean)
        for level in sorted(result.levels):
            lower, upper = point.bounds[level]
            # Nested: every wider level contains the narrower one, and all contain the mean.
            assert lower <= previous[0] and upper >= previous[1], (point, level)
            if non_negative:
                assert lower >= 0
            previous = (lower, upper)
    assert sum(result.weights.values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- Prophet fidelity


@pytest.mark.filterwarnings("ignore:The inplace keyword")
@pytest.mark.parametrize(("n", "order"), [(36, 3), (14, 0)])
def test_prophet_fit_matches_the_prophet_library(n: int, order: int) -> None:
    import pandas as pd
    from prophet import Prophet

    logging.getLogger("cmdstanpy").disabled = True
    y = noisy(cost_truth(n), sigma=0.05, seed=n)
    ds = pd.date_range("2021-01-01", periods=n, freq="MS")
    model = Prophet(
        yearly_seasonality=order if order else False,
        weekly_seasonality=False,
        daily_seasonality=False,
        seasonality_mode="multiplicative",
        uncertainty_samples=0,
    )
    model.fit(pd.DataFrame({"ds": ds, "y": y}), algorithm="LBFGS")
    future = pd.date_range(ds[-1], periods=13, freq="MS")[1:]
    expected = model.predict(pd.DataFrame({"ds": future}))["yhat"].to_numpy()

    epoch = pd.Timestamp("1970-01-01")
    days = (ds - epoch).days.to_numpy(float)
    ours = prophet_fit_many([(days, y)], yearly_order=order)[0]
    assert ours is not None
    np.testing.assert_allclose(ours.predict((future - epoch).days.to_numpy(float)), expected, rtol=1e-5)


# --------------------------------------------------------------------------- accuracy and calibration


def test_mean_follows_known_trend_and_seasonality() -> None:
    truth = cost_truth(48 + 12)
    result = forecast(as_series(noisy(truth[:48], sigma=0.02, seed=1)), horizon=12, levels=(80,))
    mean = np.array([p.mean for p in result.points])
    mape = float(np.mean(np.abs(mean - truth[48:]) / truth[48:]))
    assert mape < 0.04, (mape, result.model)
    assert result.seasonal
    assert [p.month for p in result.points] == months_from(dt.date(2025, 1, 1), 12)


def test_bands_cover_simulated_holdouts_at_about_their_level() -> None:
    """Across many seeded series the held-out months fall inside the bands about as often as promised."""
    inside = {80: 0, 95: 0}
    total = 0
    rng = np.random.default_rng(7)
    for seed in range(30):
        truth = cost_truth(
            48, level=rng.uniform(100, 5000), growth=rng.normal(0.01, 0.01), amplitude=rng.uniform(0, 0.2)
        )
        y = noisy(truth, sigma=rng.uniform(0.03, 0.12), seed=seed)
        result = forecast(as_series(y[:36]), horizon=12, levels=(80, 95))
        for point, actual in zip(result.points, y[36:], strict=True):
            for level in inside:
                lower, upper = point.bounds[level]
                inside[level] += lower <= actual <= upper
            total += 1
    coverage = {level: hits / total for level, hits in inside.items()}
    assert 0.70 <= coverage[80] <= 0.92, coverage
    assert 0.88 <= coverage[95] <= 0.995, coverage


def test_backtest_figures_are_reported() -> None:
    result = forecast(as_series(noisy(cost_truth(40), sigma=0.05, seed=3)), horizon=6, levels=(65, 80, 95))
    assert result.backtest_origins == 4
    assert result.backtest_mape is not None and 0 < result.backtest_mape < 20
    assert set(result.coverage) == {65, 80, 95}
    assert all(value is not None and 0 <= value <= 1 for value in result.coverage.values())
    assert set(result.backtest_scores) == {"prophet", "ets", "seasonal_naive"}
    assert_well_formed(result)


# --------------------------------------------------------------------------- short histories


def test_fewer_than_three_months_is_not_enough_data() -> None:
    with pytest.raises(NotEnoughData, match="not enough data"):
        forecast(as_series(np.array([10.0, 12.0])), horizon=3, levels=(80,))


def test_three_months_forecast_from_volatility() -> None:
    result = forecast(as_series(np.array([100.0, 110.0, 105.0])), horizon=6, levels=(65, 80, 95))
    assert result.backtest_origins == 0
    assert result.backtest_mape is None
    assert result.coverage == {65: None, 80: None, 95: None}
    assert any("volatility" in note for note in result.notes)
    assert not result.seasonal
    assert_well_formed(result)


def test_under_two_years_has_no_yearly_seasonality_and_wider_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    series = as_series(noisy(cost_truth(20), sigma=0.05, seed=4))
    result = forecast(series, horizon=12, levels=(80,))
    assert not result.seasonal
    assert "seasonal_naive" not in result.backtest_scores and "naive" in result.backtest_scores
    monkeypatch.setattr(engine, "SHORT_HISTORY_WIDENING", 1.0)
    unwidened = forecast(series, horizon=12, levels=(80,))
    for wide, narrow in zip(result.points, unwidened.points, strict=True):
        assert wide.mean == narrow.mean
        assert wide.bounds[80][1] - wide.bounds[80][0] > narrow.bounds[80][1] - narrow.bounds[80][0]


def test_two_years_switch_yearly_seasonality_on() -> None:
    result = forecast(as_series(noisy(cost_truth(24), sigma=0.05, seed=5)), horizon=3, levels=(80,))
    assert result.seasonal
    assert "seasonal_naive" in result.backtest_scores


# --------------------------------------------------------------------------- bands


def test_bands_never_negative_for_costs_near_zero() -> None:
    y = np.array([0, 5, 0, 12, 3, 0, 40, 2, 0, 7, 1, 0, 9, 0, 30, 4], dtype=float)
    result = forecast(as_series(y), horizon=24, levels=(65, 80, 95))
    assert_well_formed(result, non_negative=True)
    assert all(p.mean >= 0 for p in result.points)


def test_negative_history_is_allowed_and_not_clipped() -> None:
    y = np.array([120, 80, -40, 100, 90, -60, 110, 95, -30, 105, 100, -50], dtype=float)
    result = forecast(as_series(y), horizon=6, levels=(95,))
    assert_well_formed(result, non_negative=False)
    assert min(p.bounds[95][0] for p in result.points) < 0


def test_bands_widen_with_the_months_ahead() -> None:
    result = forecast(as_series(noisy(cost_truth(36), sigma=0.08, seed=6)), horizon=24, levels=(80,))
    relative = [(p.bounds[80][1] - p.bounds[80][0]) / p.mean for p in result.points]
    assert relative[-1] > relative[0]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(relative))


# --------------------------------------------------------------------------- model choice


def test_exactly_repeating_year_prefers_seasonal_naive() -> None:
    year = np.array([50, 80, 120, 90, 60, 200, 75, 65, 150, 110, 95, 300], dtype=float)
    rng = np.random.default_rng(8)
    y = np.tile(year, 4) * (1 + rng.normal(0, 0.002, 48))
    result = forecast(as_series(y), horizon=12, levels=(80,))
    assert "seasonal_naive" in result.weights
    assert max(result.weights, key=result.weights.get) == "seasonal_naive"
    assert result.model.startswith("seasonal_naive") or result.model.startswith("blend(seasonal_naive=")


def test_model_label_records_the_blend() -> None:
    result = forecast(as_series(noisy(cost_truth(36), sigma=0.06, seed=9)), horizon=12, levels=(80,))
    if len(result.weights) == 1:
        assert result.model == next(iter(result.weights))
    else:
        inner = result.model.removeprefix("blend(").removesuffix(")")
        parsed = {name: float(w) for name, w in (part.split("=") for part in inner.split(","))}
        assert parsed == pytest.approx(dict(result.weights), abs=0.006)
    assert set(result.weights) <= {"prophet", "ets", "seasonal_naive"}


# --------------------------------------------------------------------------- trend and month-over-month


@pytest.mark.parametrize(("slope", "direction"), [(30.0, "increasing"), (0.0, "stable"), (-30.0, "decreasing")])
def test_trend_direction_and_slope(slope: float, direction: str) -> None:
    t = np.arange(36)
    y = 1000 + slope * t + 100 * np.sin(2 * np.pi * t / 12)
    result = forecast(as_series(y), horizon=3, levels=(80,))
    assert result.trend.direction == direction
    assert result.trend.slope_per_month == pytest.approx(slope, abs=1e-6)
    assert result.trend.threshold == pytest.approx(0.01 * np.mean(np.abs(y[-12:])))
    assert result.trend.basis == "year_over_year"


def test_trend_below_threshold_is_stable_on_short_history() -> None:
    y = 1000 + 5.0 * np.arange(10)  # 0.5 %/month of the level: under the 1 % threshold
    result = forecast(as_series(y), horizon=3, levels=(80,))
    assert result.trend.direction == "stable"
    assert result.trend.basis == "linear_fit"
    assert result.trend.slope_per_month == pytest.approx(5.0)


def test_month_over_month_change() -> None:
    result = forecast(as_series(np.array([90.0, 100.0, 120.0])), horizon=3, levels=(80,))
    assert result.mom_change is not None
    assert result.mom_change.absolute == pytest.approx(20.0)
    assert result.mom_change.percent == pytest.approx(20.0)
    assert (result.mom_change.from_month, result.mom_change.to_month) == (dt.date(2021, 2, 1), dt.date(2021, 3, 1))
    from_zero = forecast(as_series(np.array([5.0, 0.0, 10.0])), horizon=3, levels=(80,))
    assert from_zero.mom_change is not None and from_zero.mom_change.percent is None


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("horizon", [0, 5, 36, "12", True, None])
def test_horizon_must_be_allowed(horizon: object) -> None:
    with pytest.raises(ValueError, match="horizon must be one of 3, 6, 12, 24"):
        forecast(as_series(np.ones(12)), horizon=horizon, levels=(80,))  # type: ignore[arg-type]


@pytest.mark.parametrize("levels", [(50,), (80, 99), ("80",), ()])
def test_levels_must_be_allowed(levels: tuple) -> None:
    with pytest.raises(ValueError, match="level"):
        forecast(as_series(np.ones(12)), horizon=3, levels=levels)


def test_gaps_are_an_error_unless_zero_filled() -> None:
    series = {"2024-01": 10, "2024-02": 12, "2024-04": 11, "2024-05": 13}
    with pytest.raises(ValueError, match="missing months 2024-03"):
        forecast(series, horizon=3, levels=(80,))
    filled = forecast(series, horizon=3, levels=(80,), missing="zero")
    assert filled.history_months == 5
    assert filled.points[0].label == "2024-06"


def test_duplicates_and_bad_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate month 2024-01"):
        forecast([("2024-01", 1), (dt.date(2024, 1, 15), 2), ("2024-02", 3)], horizon=3, levels=(80,))
    with pytest.raises(ValueError, match="not a number"):
        forecast([("2024-01", 1), ("2024-02", "x"), ("2024-03", 3)], horizon=3, levels=(80,))
    with pytest.raises(ValueError, match="not a finite number"):
        forecast([("2024-01", 1), ("2024-02", float("nan")), ("2024-03", 3)], horizon=3, levels=(80,))
    with pytest.raises(ValueError, match="YYYY-MM"):
        forecast([("2024-13", 1), ("2024-02", 2), ("2024-03", 3)], horizon=3, levels=(80,))


def test_mapping_list_decimal_and_order_give_the_same_forecast() -> None:
    y = noisy(cost_truth(30), sigma=0.05, seed=10)
    pairs = as_series(y)
    as_mapping = {f"{m:%Y-%m}": Decimal(str(v)) for m, v in reversed(pairs)}
    a = forecast(pairs, horizon=6, levels=(80, 95))
    b = forecast(as_mapping, horizon=6, levels=(95, 80))
    assert [p.mean for p in a.points] == pytest.approx([p.mean for p in b.points], rel=1e-9)
    assert a.model == b.model


def test_same_input_same_output() -> None:
    series = as_series(noisy(cost_truth(40), sigma=0.07, seed=11))
    assert forecast(series, horizon=24, levels=(65, 80, 95)) == forecast(series, horizon=24, levels=(65, 80, 95))


# --------------------------------------------------------------------------- anomaly support


def test_expected_band_flags_a_monthly_spike_from_earlier_months_only() -> None:
    y = noisy(cost_truth(30), sigma=0.03, seed=12)
    at = months_from(dt.date(2021, 1, 1), 31)[30]
    normal = expected_band({**dict(as_series(y)), at: float(cost_truth(31)[30])}, at=at, level=95)
    spiked = expected_band({**dict(as_series(y)), at: float(cost_truth(31)[30] * 3)}, at=f"{at:%Y-%m}", level=95)
    assert isinstance(normal, ExpectedBand)
    assert normal.outside is False
    assert spiked.outside is True
    # The spike itself does not move the band: only months before `at` are used.
    assert (spiked.expected, spiked.lower, spiked.upper) == (normal.expected, normal.lower, normal.upper)
    assert spiked.lower < spiked.expected < spiked.upper


def test_expected_band_daily_weekly_pattern() -> None:
    rng = np.random.default_rng(13)
    start = dt.date(2025, 1, 1)
    week = np.array([100, 105, 98, 102, 110, 40, 35], dtype=float)
    days = [start + dt.timedelta(days=i) for i in range(70)]
    values = [float(week[i % 7] * (1 + rng.normal(0, 0.03))) for i in range(70)]
    series = dict(zip(days, values, strict=True))
    at = days[-1]
    quiet = expected_band({**series, at: float(week[69 % 7])}, at=at, level=95, freq="day")
    loud = expected_band({**series, at: float(week[69 % 7] * 2.5)}, at=at.isoformat(), level=95, freq="day")
    assert quiet.outside is False
    assert loud.outside is True
    assert abs(quiet.expected - week[69 % 7]) / week[69 % 7] < 0.1


def test_expected_band_needs_history_before_the_point() -> None:
    with pytest.raises(NotEnoughData):
        expected_band({"2024-01": 1.0, "2024-02": 2.0, "2024-03": 50.0}, at="2024-03", level=95)
    with pytest.raises(ValueError, match="level"):
        expected_band({"2024-01": 1.0}, at="2024-03", level=90)


def test_flat_history_still_gets_a_narrow_band() -> None:
    result = forecast(as_series(np.full(30, 100.0)), horizon=3, levels=(65, 80, 95))
    lower, upper = result.points[0].bounds[80]
    assert result.points[0].mean == pytest.approx(100.0)
    assert lower == pytest.approx(99.9, abs=0.01) and upper == pytest.approx(100.1, abs=0.01)
    assert_well_formed(result)


def test_trend_is_not_set_by_one_spike() -> None:
    y = np.full(12, 100.0)
    y[3] = 5000.0
    result = forecast(as_series(y), horizon=3, levels=(80,))
    assert result.trend.direction == "stable"
    assert result.trend.slope_per_month == pytest.approx(0.0)


def test_runaway_bands_are_capped_and_said_so() -> None:
    result = forecast(as_series(np.array([1.0, 2.0, 3.0])), horizon=24, levels=(95,))
    assert "bands capped at 10x the forecast" in result.notes
    for point in result.points:
        lower, upper = point.bounds[95]
        assert upper <= point.mean * 10.0 + 1e-9
        assert lower >= point.mean / 10.0 - 1e-9


# --------------------------------------------------------------------------- long histories (ADR 0014)


def cycle_truth(n: int, *, period: int = 66, level: float = 100.0, amplitude: float = 0.6) -> np.ndarray:
    """A positive series with a slow cycle that is not yearly (a sunspot-like rise and fall), no trend."""
    t = np.arange(n)
    return level * (1 + amplitude * np.sin(2 * np.pi * t / period))


def test_long_histories_get_eight_backtest_origins_and_short_ones_four() -> None:
    long_result = forecast(as_series(noisy(cost_truth(150), sigma=0.03, seed=21)), horizon=12, levels=(80,))
    short_result = forecast(as_series(noisy(cost_truth(60), sigma=0.03, seed=21)), horizon=12, levels=(80,))
    assert long_result.backtest_origins == engine.LONG_MAX_ORIGINS == 8
    assert short_result.backtest_origins == engine.MAX_ORIGINS == 4


def test_the_autoregressive_candidate_only_runs_on_long_histories() -> None:
    long_result = forecast(as_series(noisy(cycle_truth(150), sigma=0.03, seed=22)), horizon=12, levels=(80,))
    short_result = forecast(as_series(noisy(cycle_truth(60), sigma=0.03, seed=22)), horizon=12, levels=(80,))
    assert "ar" in long_result.backtest_scores
    assert "ar" not in short_result.backtest_scores


def test_a_slow_cycle_near_its_peak_is_forecast_to_come_back_down() -> None:
    # 170 months of a 66-month cycle end just after a peak (t = 16.5 + 66k): persistence (naive, ETS level)
    # would carry the peak forward, the truth falls ~40 % over the next year.
    n = 170
    truth = cycle_truth(n + 12)
    y = noisy(truth[:n], sigma=0.03, seed=23)
    result = forecast(as_series(y), horizon=12, levels=(80, 95))
    assert "ar" in result.weights  # the backtest over the last eight years gives the cycle-aware model weight
    means = np.array([p.mean for p in result.points])
    assert means[-1] < means[0] * 0.85  # the forecast turns down
    mape = float(np.mean(np.abs(means - truth[n:]) / truth[n:]))
    naive_mape = float(np.mean(np.abs(y[-1] - truth[n:]) / truth[n:]))
    assert mape < 0.6 * naive_mape
    assert_well_formed(result)


def test_autoregressive_model_recovers_a_known_ar2_process() -> None:
    from forecasting.engine_models import autoregressive

    rng = np.random.default_rng(24)
    z = np.zeros(400)
    for t in range(2, 400):
        z[t] = 0.6 * z[t - 1] - 0.3 * z[t - 2] + rng.normal(0, 0.01)
    y = np.exp(4.0 + z)  # positive: fitted on log(y)
    path = autoregressive(y, steps=24)
    # Mean-reverting: far ahead the forecast is the process mean, exp(4).
    assert path[-1] == pytest.approx(np.exp(4.0), rel=0.01)
    assert np.all(np.isfinite(path))


def test_an_explosive_history_does_not_make_the_autoregressive_forecast_explode() -> None:
    from forecasting.engine_models import autoregressive

    y = 1.05 ** np.arange(120) * 10  # every AR fit of a pure exponential is on the edge of stationarity
    path = autoregressive(y, steps=24)
    assert np.all(np.isfinite(path)) and path.max() < y[-1] * 1.05**30


# --------------------------------------------------------------------------- batched bands


def daily_series(n: int, *, seed: int) -> dict[dt.date, float]:
    rng = np.random.default_rng(seed)
    week = np.array([100, 105, 98, 102, 110, 40, 35], dtype=float)
    start = dt.date(2025, 1, 1)
    return {start + dt.timedelta(days=i): float(week[i % 7] * (1 + rng.normal(0, 0.03))) for i in range(n)}


def test_expected_bands_for_one_day_equal_expected_band() -> None:
    series = daily_series(150, seed=25)
    at = max(series)
    single = expected_band(series, at=at, level=95, freq="day")
    (batched,) = engine.expected_bands(series, at=[at], level=95, freq="day")
    assert batched == single


def test_expected_bands_judge_many_days_in_one_pass_and_find_the_spike() -> None:
    series = daily_series(150, seed=26)
    days = sorted(series)[-14:]
    spike_day = days[6]
    series[spike_day] *= 3
    bands = engine.expected_bands(series, at=days, level=95, freq="day")
    assert [b.at for b in bands] == days
    singles = [expected_band(series, at=day, level=95, freq="day") for day in days]
    # The pass starts earlier than a single day's window, so bands differ slightly, not the verdicts.
    assert sum(b.outside == s.outside for b, s in zip(bands, singles, strict=True)) >= 12
    assert [b.upper < b.actual for b in bands].count(True) <= 3  # the spike and ordinary noise at 95 %
    assert bands[6].outside is True and bands[6].actual == series[spike_day]
    # Each day is judged from the days before it only: the spike does not widen its own band, and it is close
    # to the band a single call computes for that day.
    alone = expected_band(series, at=spike_day, level=95, freq="day")
    assert bands[6].expected == pytest.approx(alone.expected, rel=0.05)
    assert bands[6].upper < series[spike_day]


def test_expected_bands_mark_days_without_enough_history_and_keep_the_order() -> None:
    series = daily_series(30, seed=27)
    days = sorted(series)
    bands = engine.expected_bands(series, at=[days[-1], days[5], days[20]], level=80, freq="day")
    assert bands[1] is None  # five days before it: fewer than DAILY_MIN_DAYS
    assert bands[0].at == days[-1] and bands[2].at == days[20]
    monthly = engine.expected_bands(
        {"2024-01": 1.0, "2024-02": 2.0, "2024-03": 3.0, "2024-04": 4.0}, at=["2024-02", "2024-04"]
    )
    assert monthly[0] is None and monthly[1].at == dt.date(2024, 4, 1)
    with pytest.raises(ValueError, match="freq"):
        engine.expected_bands(series, at=[days[-1]], freq="week")
