"""Prophet's model, fitted the way ``prophet.Prophet(...).fit(df, algorithm="LBFGS")`` fits it, without pandas.

Why not call ``prophet.Prophet`` directly: importing it costs ~1.1 s (pandas, holidays, plotting) and every
fit/predict spends ~40 ms in DataFrame plumbing around a ~10 ms Stan optimisation. The forecast engine fits
Prophet several times per series (final fit + rolling-origin backtest), so that plumbing alone would break the
speed budget. This module rebuilds exactly the inputs Prophet hands to its compiled Stan model for the one
configuration the engine uses (linear growth, optional multiplicative yearly seasonality, no weekly/daily
seasonality, no holidays or regressors, ``scaling="absmax"``, MAP estimate), runs Prophet's own compiled model
binary (shipped inside the ``prophet`` wheel) through the CmdStan command line, and evaluates the fitted trend
and seasonality with numpy. ``forecasting/tests/test_engine.py`` checks the result against
``prophet.Prophet`` itself, so a Prophet upgrade that changes its preprocessing fails loudly.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Prophet's defaults, which the engine keeps (they are what "Prophet" means to the reader of a forecast).
N_CHANGEPOINTS = 25
CHANGEPOINT_RANGE = 0.8
CHANGEPOINT_PRIOR_SCALE = 0.05
SEASONALITY_PRIOR_SCALE = 10.0
YEAR_DAYS = 365.25
_STAN_ITER = 10_000
# A fixed seed: L-BFGS from Prophet's deterministic initial point does not use it, but CmdStan would
# otherwise draw one from the clock, and "same input, same output" should not depend on that.
_STAN_SEED = 20_240_501


class ProphetUnavailable(RuntimeError):
    """The ``prophet`` package (and with it the compiled Stan model) is not installed or did not run."""


@dataclass(frozen=True)
class ProphetFit:
    """A fitted Prophet model on the scaled time axis Prophet uses internally."""

    start_day: float  # days since 1970-01-01 of the first history point
    t_scale_days: float  # history span in days (Prophet's ``t_scale``)
    y_scale: float  # Prophet's ``absmax`` scale
    yearly_order: int
    changepoints_t: np.ndarray
    k: float
    m: float
    delta: np.ndarray
    beta: np.ndarray

    def predict(self, days: np.ndarray) -> np.ndarray:
        """yhat at the given dates (days since 1970-01-01), as ``Prophet.predict`` computes it."""
        t = (np.asarray(days, dtype=float) - self.start_day) / self.t_scale_days
        # Prophet.piecewise_linear
        deltas_t = (self.changepoints_t[None, :] <= t[:, None]) * self.delta
        k_t = deltas_t.sum(axis=1) + self.k
        m_t = (deltas_t * -self.changepoints_t).sum(axis=1) + self.m
        trend = (k_t * t + m_t) * self.y_scale
        if self.yearly_order == 0:
            return trend
        multiplicative = fourier_features(days, order=self.yearly_order) @ self.beta
        return trend * (1.0 + multiplicative)


def fourier_features(days: np.ndarray, *, order: int) -> np.ndarray:
    """Prophet.fourier_series for the yearly period: columns sin(1), cos(1), sin(2), cos(2), ..."""
    x = 2.0 * np.pi * np.asarray(days, dtype=float)
    out = np.empty((x.shape[0], 2 * order))
    for i in range(order):
        c = (i + 1) / YEAR_DAYS * x
        out[:, 2 * i] = np.sin(c)
        out[:, 2 * i + 1] = np.cos(c)
    return out


@dataclass(frozen=True)
class _Problem:
    data: dict
    init: dict
    fit_template: dict


def _build_problem(*, days: np.ndarray, y: np.ndarray, yearly_order: int) -> _Problem:
    """Prophet.preprocess + calculate_initial_params for our configuration."""
    days = np.asarray(days, dtype=float)
    y = np.asarray(y, dtype=float)
    n = days.shape[0]
    start = float(days[0])
    t_scale = float(days[-1] - days[0])
    y_scale = float(np.abs(y).max())
    if y_scale == 0:
        y_scale = 1.0
    t = (days - start) / t_scale
    y_scaled = y / y_scale

    hist_size = math.floor(n * CHANGEPOINT_RANGE)
    n_cp = min(N_CHANGEPOINTS, hist_size - 1)
    if n_cp > 0:
        cp_index = np.linspace(0, hist_size - 1, n_cp + 1).round().astype(int)[1:]
        changepoints_t = np.sort(t[cp_index])
    else:
        changepoints_t = np.array([0.0])  # Prophet's dummy changepoint

    if yearly_order > 0:
        x = fourier_features(days, order=yearly_order)
        sigmas = [SEASONALITY_PRIOR_SCALE] * x.shape[1]
        s_m = [1.0] * x.shape[1]
    else:
        x = np.zeros((n, 1))  # Prophet's "zeros" placeholder column
        sigmas = [1.0]
        s_m = [0.0]
    s_a = [0.0] * x.shape[1]

    # Prophet.linear_growth_init: the line through the first and last points.
    k = float((y_scaled[-1] - y_scaled[0]) / (t[-1] - t[0]))
    m = float(y_scaled[0] - k * t[0])
    data = {
        "T": n,
        "S": int(changepoints_t.shape[0]),
        "K": int(x.shape[1]),
        "tau": CHANGEPOINT_PRIOR_SCALE,
        "trend_indicator": 0,
        "y": y_scaled.tolist(),
        "t": t.tolist(),
        "cap": [0.0] * n,
        "t_change": changepoints_t.tolist(),
        "s_a": s_a,
        "s_m": s_m,
        "X": x.tolist(),
        "sigmas": sigmas,
    }
    init = {
        "k": k,
        "m": m,
        "delta": [0.0] * int(changepoints_t.shape[0]),
        "beta": [0.0] * int(x.shape[1]),
        "sigma_obs": 1.0,
    }
    template = {
        "start_day": start,
        "t_scale_days": t_scale,
        "y_scale": y_scale,
        "yearly_order": yearly_order,
        "changepoints_t": changepoints_t,
        "has_changepoints": n_cp > 0,
        "constant": bool(y.min() == y.max()),
    }
    return _Problem(data=data, init=init, fit_template=template)


def _model_binary() -> Path:
    # find_spec locates the package without importing it (importing prophet costs ~1 s).
    spec = importlib.util.find_spec("prophet")
    if spec is None or not spec.submodule_search_locations:
        raise ProphetUnavailable("the 'prophet' package is not installed")
    exe = Path(next(iter(spec.submodule_search_locations))) / "stan_model" / "prophet_model.bin"
    if not exe.is_file():
        raise ProphetUnavailable(f"Prophet's compiled Stan model is missing at {exe}")
    return exe


_EXE: Path | None = None
# Stan talks to us through three small files per fit; on a RAM-backed tmpfs that costs no journal writes
# (measured ~10-20 % of batch throughput on this machine's ext4 /tmp).
_SHM = "/dev/shm"  # noqa: S108 - only a parent for private mkdtemp() directories
_SCRATCH = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None


def _run_stan(problem: _Problem, *, algorithm: str, timeout: float) -> dict[str, np.ndarray]:
    global _EXE
    if _EXE is None:
        _EXE = _model_binary()
    with tempfile.TemporaryDirectory(prefix="forecast-stan-", dir=_SCRATCH) as tmp:
        data_path = os.path.join(tmp, "data.json")
        init_path = os.path.join(tmp, "init.json")
        out_path = os.path.join(tmp, "out.csv")
        with open(data_path, "w") as fh:
            json.dump(problem.data, fh)
        with open(init_path, "w") as fh:
            json.dump(problem.init, fh)
        # The same call cmdstanpy makes for CmdStanModel.optimize(algorithm=..., iter=10000).
        args = [
            str(_EXE), "optimize", f"algorithm={algorithm.lower()}", f"iter={_STAN_ITER}", "jacobian=0",
            "data", f"file={data_path}", f"init={init_path}",
            "random", f"seed={_STAN_SEED}",
            "output", f"file={out_path}", "refresh=0", "sig_figs=12",
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, check=False, timeout=timeout)  # noqa: S603 - fixed binary
        if done.returncode != 0 or not os.path.exists(out_path):
            raise RuntimeError(f"Stan {algorithm} optimisation failed: {done.stdout[-300:]!r}")
        with open(out_path) as fh:
            rows = [line for line in fh if line.strip() and not line.startswith("#")]
    names = rows[0].strip().split(",")
    values = np.array([float(v) for v in rows[1].strip().split(",")])
    out: dict[str, list[float]] = {}
    for name, value in zip(names, values, strict=True):
        out.setdefault(name.split(".")[0], []).append(value)
    return {key: np.asarray(val) for key, val in out.items()}


def _solve(problem: _Problem) -> ProphetFit:
    tpl = problem.fit_template
    if tpl["constant"]:
        # Prophet skips Stan for a constant series and keeps its initial parameters.
        params = {
            "k": np.array([problem.init["k"]]),
            "m": np.array([problem.init["m"]]),
            "delta": np.asarray(problem.init["delta"], dtype=float),
            "beta": np.asarray(problem.init["beta"], dtype=float),
        }
    else:
        try:
            params = _run_stan(problem, algorithm="LBFGS", timeout=10)
        except RuntimeError:
            # Prophet's own fallback when L-BFGS terminates abnormally (typically a near-exact fit of a
            # very short series). Newton can take seconds to tens of seconds, so it gets a short leash;
            # past it the engine drops Prophet for this series rather than stall a batch.
            params = _run_stan(problem, algorithm="Newton", timeout=5)
    k = float(params["k"][0])
    delta = np.asarray(params["delta"], dtype=float)
    if not tpl["has_changepoints"]:
        # Prophet folds the dummy changepoint's delta into k.
        k += float(delta.sum())
        delta = np.zeros_like(delta)
    beta = np.asarray(params["beta"], dtype=float)
    return ProphetFit(
        start_day=tpl["start_day"],
        t_scale_days=tpl["t_scale_days"],
        y_scale=tpl["y_scale"],
        yearly_order=tpl["yearly_order"],
        changepoints_t=tpl["changepoints_t"],
        k=k,
        m=float(params["m"][0]),
        delta=delta,
        beta=beta if tpl["yearly_order"] > 0 else np.zeros(0),
    )


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# Threads that wait on Stan subprocesses. More than the two cores: each fit also spends a few ms starting the
# binary and exchanging files, and four in flight kept both cores busy where two left them ~40 % idle.
_THREADS = 4


def prophet_fit_many(jobs: Sequence[tuple[np.ndarray, np.ndarray]], *, yearly_order: int) -> list[ProphetFit | None]:
    """Fit one Prophet model per (days, y) job; ``None`` where Stan failed with both optimisers.

    The fits run as Stan subprocesses from a small thread pool: the work happens outside the GIL, so one call
    uses every core (a single organisation's forecasts are interactive; the nightly batch runs one engine per
    core and the extra threads fill the gaps while a binary starts or writes its output).
    """
    global _POOL
    problems = [_build_problem(days=d, y=y, yearly_order=yearly_order) for d, y in jobs]

    def solve(problem: _Problem) -> ProphetFit | None:
        try:
            return _solve(problem)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError, IndexError):
            return None

    if len(problems) == 1:
        return [solve(problems[0])]
    with _POOL_LOCK:  # callers may forecast from several threads of their own
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="forecast-stan")
    return list(_POOL.map(solve, problems))


def prophet_available() -> bool:
    try:
        _model_binary()
    except ProphetUnavailable:
        return False
    return True
