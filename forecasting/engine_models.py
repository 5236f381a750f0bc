"""The engine's challenger models: exponential smoothing (ETS) and the naive forecasts.

ETS here is Holt-Winters in error-correction form (additive errors, optional damped trend, optional additive
seasonality), run on log(y) when the series is strictly positive so that seasonality and errors scale with
the level the way cost series do. Its smoothing parameters are chosen from a fixed grid by AIC instead of a
numerical optimiser: every grid point is filtered at once with numpy (one pass over the history), which
costs a few milliseconds where statsmodels' ``ExponentialSmoothing.fit`` costs ~100 ms, never fails to
converge, and is deterministic. Because the filter is causal, the same pass also yields an honest
rolling-origin backtest: the parameters for an origin are chosen from the errors before that origin and the
forecast starts from the state at that origin, so no information from after the origin leaks in (the initial
states come from the first 24 months, which precede every seasonal backtest origin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERIOD = 12

_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
# (phi, beta as a fraction of alpha); phi < 1 keeps 24-month extrapolations from running away.
_TRENDS = ((0.0, 0.0), *((phi, frac) for phi in (0.85, 0.92, 0.98) for frac in (0.02, 0.1, 0.3)))
# None = no seasonal component at all; a number = seasonal smoothing gamma (0 = fixed seasonal profile).
_GAMMAS = (None, 0.0, 0.05, 0.15, 0.3)


@dataclass(frozen=True)
class _Grid:
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    phi: np.ndarray
    trend: np.ndarray  # bool
    seasonal: np.ndarray  # bool
    n_params: np.ndarray


def _grid(*, seasonal: bool) -> _Grid:
    rows = []
    for alpha in _ALPHAS:
        for phi, frac in _TRENDS:
            for gamma in _GAMMAS if seasonal else (None,):
                if gamma is not None and alpha + gamma > 1.0:
                    continue
                has_trend = phi > 0
                has_season = gamma is not None
                # Counted parameters for AIC: alpha; beta+phi; gamma plus a share for the seasonal profile
                # (it is estimated heuristically from two years, not freely, so it is not charged 11).
                n_params = 1 + (2 if has_trend else 0) + (4 if has_season else 0)
                rows.append(
                    (alpha, alpha * frac, gamma or 0.0, phi if has_trend else 0.0, has_trend, has_season, n_params)
                )
    a = np.array(rows, dtype=float)
    return _Grid(
        alpha=a[:, 0],
        beta=a[:, 1],
        gamma=a[:, 2],
        phi=a[:, 3],
        trend=a[:, 4].astype(bool),
        seasonal=a[:, 5].astype(bool),
        n_params=a[:, 6],
    )


_GRIDS: dict[tuple[bool, int], _Grid] = {}


def _grid_for(*, seasonal: bool, period: int) -> _Grid:
    """The parameter grid, built once per (seasonal, period) and process (the daily bands use period 7)."""
    key = (seasonal, period)
    grid = _GRIDS.get(key)
    if grid is None:
        grid = _GRIDS[key] = _grid(seasonal=seasonal)
    return grid


@dataclass(frozen=True)
class EtsResult:
    backtests: list[np.ndarray]  # per origin, forecasts of y (original scale)
    forecast: np.ndarray  # final forecast of y
    description: str  # e.g. "ETS(A,Ad,A) on log, alpha=0.3 ..."
    one_step_errors: np.ndarray  # in-sample one-step errors on the modelling scale (for daily bands)
    log_scale: bool
    # The grid point chosen at each backtest origin and every grid point's one-step errors (rows = time):
    # the daily bands of several days come from one pass (engine.expected_bands).
    origin_choices: tuple[int, ...] = ()
    all_errors: np.ndarray | None = None


def ets_run(
    y: np.ndarray,
    *,
    seasonal: bool,
    origins: Sequence[int],
    backtest_horizons: Sequence[int],
    horizon: int,
    period: int = PERIOD,
) -> EtsResult:
    """Backtest forecasts at each origin (``y[:origin]`` → next ``h`` values) and the final forecast."""
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    log_scale = bool(np.all(y > 0))
    z = np.log(y) if log_scale else y.copy()
    grid = _grid_for(seasonal=seasonal, period=period)
    g = grid.alpha.shape[0]

    if seasonal:
        # Classical start: level and slope from the first two cycles' means, seasonal profile from
        # the de-trended first two cycles, centred on zero. Only data before the earliest origin may be
        # used, so a backtest starting after one and a half cycles starts from one cycle and no slope.
        cycles = 2 if min([n, *origins]) >= 2 * period else 1
        c1 = z[:period].mean()
        slope = (z[period : 2 * period].mean() - c1) / period if cycles == 2 else 0.0
        centre = (period - 1) / 2
        t = np.arange(cycles * period)
        detrended = z[: cycles * period] - (c1 + (t - centre) * slope)
        profile = detrended.reshape(cycles, period).mean(axis=0)
        profile -= profile.mean()
        level0 = np.where(grid.trend, c1 - (centre + 1) * slope, c1)
        slope0 = np.where(grid.trend, slope, 0.0)
        seasons = np.where(grid.seasonal[:, None], profile[None, :], 0.0)
    else:
        level0 = np.full(g, z[0])
        slope0 = np.zeros(g)
        seasons = np.zeros((g, period))

    level = level0.astype(float).copy()
    trend = slope0.astype(float).copy()
    seasons = seasons.astype(float).copy()
    alpha, beta, gamma, phi = grid.alpha, grid.beta, grid.gamma, grid.phi
    sse = np.zeros(g)
    wanted = set(origins) | {n}
    snapshots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    errors = np.empty((n, g))
    for t_i in range(n + 1):
        if t_i in wanted:
            snapshots[t_i] = (level.copy(), trend.copy(), seasons.copy(), sse.copy())
        if t_i == n:
            break
        slot = t_i % period
        season = seasons[:, slot]
        damped = phi * trend
        err = z[t_i] - (level + damped + season)
        errors[t_i] = err
        level = level + damped + alpha * err
        trend = damped + beta * err
        seasons[:, slot] = season + gamma * err
        sse += err * err

    def choose(at: int) -> int:
        lvl, _, _, sse_at = snapshots[at]
        del lvl
        aic = at * np.log(sse_at / at + 1e-12) + 2.0 * grid.n_params
        return int(np.argmin(aic))

    def project(at: int, idx: int, steps: int) -> np.ndarray:
        lvl, trd, sea, _ = snapshots[at]
        h = np.arange(1, steps + 1)
        p = phi[idx]
        damp_sum = np.cumsum(p**h) if p > 0 else np.zeros(steps)
        slots = (at + h - 1) % period
        path = lvl[idx] + damp_sum * trd[idx] + sea[idx, slots]
        return np.exp(path) if log_scale else path

    backtests = []
    choices = []
    for origin, steps in zip(origins, backtest_horizons, strict=True):
        choices.append(choose(origin))
        backtests.append(project(origin, choices[-1], steps))
    final_idx = choose(n)
    forecast = project(n, final_idx, horizon)
    description = _describe(grid, final_idx, log_scale)
    return EtsResult(
        backtests=backtests,
        forecast=forecast,
        description=description,
        one_step_errors=errors[:, final_idx].copy(),
        log_scale=log_scale,
        origin_choices=tuple(choices),
        all_errors=errors,
    )


def _describe(grid: _Grid, idx: int, log_scale: bool) -> str:
    trend = "Ad" if grid.trend[idx] else "N"
    season = "A" if grid.seasonal[idx] else "N"
    parts = [f"alpha={grid.alpha[idx]:g}"]
    if grid.trend[idx]:
        parts += [f"beta={grid.beta[idx]:.3g}", f"phi={grid.phi[idx]:g}"]
    if grid.seasonal[idx]:
        parts.append(f"gamma={grid.gamma[idx]:g}")
    scale = " on log(y)" if log_scale else ""
    return f"ETS(A,{trend},{season}){scale} {' '.join(parts)}"


def seasonal_naive(y: np.ndarray, *, steps: int, period: int = PERIOD) -> np.ndarray:
    """The value of the same month one cycle earlier (repeated for horizons beyond one cycle)."""
    last_cycle = np.asarray(y, dtype=float)[-period:]
    return np.array([last_cycle[h % period] for h in range(steps)])


def naive(y: np.ndarray, *, steps: int) -> np.ndarray:
    """The last observed value, carried forward."""
    return np.full(steps, float(np.asarray(y, dtype=float)[-1]))


# Autoregressive orders tried (AIC): short memory, one and two years (the yearly lag and the one after it).
AR_ORDERS = (1, 2, 3, 6, 12, 13, 24, 25)
AR_MIN_ROWS_PER_PARAM = 3


def autoregressive(y: np.ndarray, *, steps: int) -> np.ndarray:
    """AR(p) with an intercept by least squares on log(y) (on y if it touches zero), p by AIC among AR_ORDERS.

    Iterated forecasts revert towards the history's mean level at the speed the data show: the one candidate
    that expects a cycle (sunspots, a project that winds down) to come back instead of carrying the latest
    level forward. Non-stationary (explosive) fits are rejected: they would extrapolate without bound.
    """
    y = np.asarray(y, dtype=float)
    log_scale = bool(np.all(y > 0))
    z = np.log(y) if log_scale else y
    n = z.shape[0]
    best: tuple[float, np.ndarray, int] | None = None
    for p in AR_ORDERS:
        rows = n - p
        if rows < AR_MIN_ROWS_PER_PARAM * (p + 1):
            break
        # Lagged design matrix: column j holds z[t - 1 - j].
        x = np.ones((rows, p + 1))
        for j in range(p):
            x[:, j + 1] = z[p - 1 - j : n - 1 - j]
        target = z[p:]
        coef, *_ = np.linalg.lstsq(x, target, rcond=None)
        resid = target - x @ coef
        sse = float(resid @ resid)
        # AIC on the rows the smallest order would also fit is not needed for a ranking this coarse.
        aic = rows * math.log(sse / rows + 1e-12) + 2.0 * (p + 1)
        if np.sum(np.abs(coef[1:])) >= 1.0 and abs(_ar_root_radius(coef[1:])) >= 1.0:
            continue
        if best is None or aic < best[0]:
            best = (aic, coef, p)
    if best is None:
        return np.full(steps, float(y[-1]))
    _, coef, p = best
    window = list(z[-p:])
    out = np.empty(steps)
    for h in range(steps):
        value = coef[0] + sum(coef[j + 1] * window[-1 - j] for j in range(p))
        out[h] = value
        window.append(value)
    return np.exp(out) if log_scale else out


def _ar_root_radius(phi: np.ndarray) -> float:
    """Largest modulus of the AR polynomial's inverse roots (>= 1: non-stationary)."""
    companion = np.zeros((phi.shape[0], phi.shape[0]))
    companion[0, :] = phi
    if phi.shape[0] > 1:
        companion[1:, :-1] = np.eye(phi.shape[0] - 1)
    return float(np.max(np.abs(np.linalg.eigvals(companion))))
