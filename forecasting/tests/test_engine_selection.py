"""Model choice on long histories (ADR 0016): the spec's linear regression as a candidate, and the backtest
winner used alone when the backtest has eight origins. Real Prophet fits, no database."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting import engine
from forecasting.engine import forecast, linear_regression
from forecasting.tests.test_engine import as_series, assert_well_formed, cost_truth, noisy


def line_with_noise(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A straight line (500 + 3 per month) plus white noise of 60: no seasonality, no regime change."""
    truth = 500.0 + 3.0 * np.arange(n + 12)
    rng = np.random.default_rng(seed)
    return truth[:n] + rng.normal(0.0, 60.0, n), truth[n:]


def test_linear_regression_is_ordinary_least_squares_on_the_month_index() -> None:
    y = np.array([3.0, 5.0, 4.0, 8.0, 9.0, 12.0])
    slope, intercept = np.polyfit(np.arange(6), y, 1)
    expected = intercept + slope * np.arange(6, 9)
    assert linear_regression(y, steps=3) == pytest.approx(expected)


def test_a_line_with_noise_gets_the_linear_candidate_and_the_model_says_so() -> None:
    y, future = line_with_noise(144, seed=1)
    result = forecast(as_series(y), horizon=12, levels=(80, 95))
    # The backtest over the last eight years scores the straight line best (seasonal models chase the noise).
    assert min(result.backtest_scores, key=result.backtest_scores.get) == "linear"
    assert result.model == "linear"
    assert result.weights == {"linear": 1.0}
    means = np.array([p.mean for p in result.points])
    assert means == pytest.approx(linear_regression(y, steps=12))
    assert float(np.mean(np.abs(means - future) / future)) < 0.03
    assert_well_formed(result)


def test_the_linear_candidate_only_runs_on_long_histories() -> None:
    y, _ = line_with_noise(144, seed=2)
    assert "linear" in forecast(as_series(y), horizon=12, levels=(80,)).backtest_scores
    short = forecast(as_series(y[-(engine.LINEAR_MIN_MONTHS - 1) :]), horizon=12, levels=(80,))
    assert "linear" not in short.backtest_scores


def test_an_eight_origin_backtest_uses_its_winner_alone() -> None:
    result = forecast(as_series(noisy(cost_truth(150), sigma=0.04, seed=31)), horizon=12, levels=(65, 80, 95))
    assert result.backtest_origins == engine.LONG_MAX_ORIGINS
    winner = min(result.backtest_scores, key=result.backtest_scores.get)
    assert result.weights == {winner: 1.0}
    assert result.model == winner  # recorded by name, no blend
    assert_well_formed(result)


def test_a_four_origin_backtest_still_blends_the_close_candidates() -> None:
    result = forecast(as_series(noisy(cost_truth(60), sigma=0.04, seed=31)), horizon=12, levels=(80,))
    assert result.backtest_origins == engine.MAX_ORIGINS
    best = min(result.backtest_scores.values())
    close = {name for name, score in result.backtest_scores.items() if score <= engine.BLEND_CUTOFF * best}
    assert set(result.weights) == close
    if len(close) > 1:
        assert result.model.startswith("blend(")


def test_weights_rule() -> None:
    scores = {"prophet": 0.10, "ets": 0.11, "seasonal_naive": 0.30}
    names = list(scores)
    blended = engine._weights(scores, candidates=names)
    assert set(blended) == {"prophet", "ets"}
    assert blended["prophet"] / blended["ets"] == pytest.approx((0.11 / 0.10) ** 2)
    assert engine._weights(scores, candidates=names, select_best=True) == {"prophet": 1.0}
    # A tie goes to the earlier candidate.
    tied = {"prophet": 0.2, "ets": 0.1, "ar": 0.1}
    assert engine._weights(tied, candidates=list(tied), select_best=True) == {"ets": 1.0}
