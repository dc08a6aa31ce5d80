"""Resampling, sliding windows and impact-centred features. Pure numpy/scipy.

A window is ``WINDOW_S`` seconds at ``RATE_HZ``. The candidate impact is the magnitude peak
in the window's middle part (``PRE_S`` seconds of history before it, at least ``POST_S``
after), so with windows every second each impact is judged at most ~3 s after it happened,
with enough of the aftermath (lying still, a new orientation) to confirm it. All features
are rotation invariant (magnitudes and the angle between two gravity estimates), so they do
not depend on how the sensor is mounted.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

RATE_HZ = 50.0
WINDOW_S = 6.0
STEP_S = 1.0
PRE_S = 2.0  # the candidate impact has at least this much history in the window
POST_S = 2.0  # ... and at least this much aftermath
GRAVITY = 9.80665

N = int(WINDOW_S * RATE_HZ)  # samples per window
STEP = int(STEP_S * RATE_HZ)
CAND_LO = int(PRE_S * RATE_HZ)
CAND_HI = N - int(POST_S * RATE_HZ)

FEATURES: tuple[str, ...] = (
    "peak_g",  # magnitude at the impact
    "freefall_min_g",  # lowest magnitude in the second before the impact
    "freefall_frac",  # share of that second below 0.6 g
    "freefall_lag_s",  # time from that minimum to the impact
    "jerk_max_gps",  # steepest magnitude change around the impact (g/s)
    "impact_sma_g",  # mean |magnitude - 1 g| within 0.5 s of the impact
    "impact_width_s",  # time above 1.5 g within 0.5 s of the impact
    "pre_std_g",  # movement before the impact
    "pre_mean_g",
    "post_std_g",  # stillness from 1 s after the impact to the window's end
    "post_mean_g",
    "post_still_frac",  # share of that aftermath within 0.1 g of 1 g
    "tilt_change_deg",  # angle between the gravity direction before and after
    "crossings_1_5g",  # upward crossings of 1.5 g in the window (gait and jogging are periodic)
    "window_std_g",
    "window_range_g",
    # arm or whole body: a fallen body drops along gravity, then lies still for seconds;
    # clapping, jogging or a hand hitting a table repeat and keep moving
    "vert_min_g",  # lowest acceleration along the pre-impact gravity in the second before
    "pre_sma_g",  # mean |magnitude - 1 g| before the impact (pre-impact activity)
    "post_sma_g",  # ... and after it
    "late_std_g",  # magnitude std over the window's last second (still lying still?)
    "crossings_2g",  # upward crossings of 2 g (repeated blows)
    # a fall or a controlled lie-down (onto a bed, a sofa): a falling body gains speed in
    # free fall and turns while it drops; a person lying down lowers the body slowly and
    # turns after sitting on the edge
    "descent_v_ms",  # largest speed gained in free fall in the 1.5 s before: max of the
    # integral of (1 g - |a|) over any interval there (m/s; rotation invariant)
    "vert_v_ms",  # the same along the pre-impact gravity direction (the vertical speed)
    "turn_pre_deg",  # posture change before the impact: angle between the smoothed
    # direction 1.5 s and 0.25 s before it
    "descent_turn_dps",  # fastest turn of the smoothed direction from 1.5 s to 0.3 s before
)

F64 = npt.NDArray[np.float64]


def resample(samples: npt.ArrayLike, rate_hz: float) -> F64:
    """(n, 3) samples at ``rate_hz`` to RATE_HZ with an anti-aliasing polyphase filter."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, not {rate_hz}")
    ratio = Fraction(RATE_HZ / rate_hz).limit_denominator(64)
    if ratio == 1 or len(x) == 0:
        return x.copy()
    if len(x) == 1:
        return np.repeat(x, max(1, round(ratio.numerator / ratio.denominator)), axis=0)
    # Imported here, not at the top: scipy.signal (with scipy.stats behind it) is seconds of
    # start-up, and the alerts lane process imports this module but never resamples.
    from scipy.signal import resample_poly

    out = resample_poly(x, ratio.numerator, ratio.denominator, axis=0, padtype="line")
    return np.asarray(out, dtype=np.float64)


def to_uniform(times: npt.ArrayLike, samples: npt.ArrayLike) -> tuple[float, F64]:
    """Irregular (t, xyz) samples to a uniform grid at their median rate: (rate, samples)."""
    t = np.asarray(times, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if len(t) != len(x) or len(t) < 2:
        raise ValueError("need at least two samples with one time each")
    order = np.argsort(t, kind="stable")
    t, x = t[order], x[order]
    dt = np.diff(t)
    positive = dt[dt > 0]
    if positive.size == 0:
        raise ValueError("all samples share one time")
    rate = float(round(1.0 / float(np.median(positive)), 3))
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * rate + 1e-6)) + 1) / rate
    cols = [np.interp(grid, t, x[:, i]) for i in range(3)]
    return rate, np.stack(cols, axis=1)


def windows(samples: F64) -> npt.NDArray[np.float64]:
    """Every full window (k * STEP .. k * STEP + N) of 50 Hz samples: shape (count, N, 3)."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if len(x) < N:
        return np.zeros((0, N, 3))
    starts = np.arange(0, len(x) - N + 1, STEP)
    return np.stack([x[s : s + N] for s in starts])


def peak_index(w: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Index of the candidate impact in each window (shape (count, N, 3) -> (count,))."""
    mag = np.linalg.norm(w, axis=2)
    return np.asarray(CAND_LO + np.argmax(mag[:, CAND_LO:CAND_HI], axis=1), dtype=np.int64)


def features(w: npt.NDArray[np.float64]) -> F64:
    """Feature matrix (count, len(FEATURES)) for windows of shape (count, N, 3) in m/s2."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 3 or w.shape[1:] != (N, 3):
        raise ValueError(f"windows must have shape (count, {N}, 3), not {w.shape}")
    count = len(w)
    if count == 0:
        return np.zeros((0, len(FEATURES)))
    g = w / GRAVITY
    mag = np.linalg.norm(g, axis=2)
    rows = np.arange(count)[:, None]
    p = peak_index(w)
    sec, half = int(RATE_HZ), int(RATE_HZ / 2)

    before = mag[rows, p[:, None] + np.arange(-sec, 0)]
    around = mag[rows, p[:, None] + np.arange(-half, half)]
    jerk = np.abs(np.diff(mag[rows, p[:, None] + np.arange(-half, half + 1)], axis=1)) * RATE_HZ

    idx = np.arange(N)[None, :]
    pre = idx < (p[:, None] - half)  # at least 1.5 s of history: CAND_LO - half samples
    post = idx >= (p[:, None] + sec)  # at least 1 s of aftermath
    pre_mean, pre_std = _masked_stats(mag, pre)
    post_mean, post_std = _masked_stats(mag, post)
    still = np.sum((np.abs(mag - 1.0) < 0.1) & post, axis=1) / np.sum(post, axis=1)

    g_pre = np.sum(g * pre[:, :, None], axis=1)
    g_post = np.sum(g * post[:, :, None], axis=1)
    cos = np.sum(g_pre * g_post, axis=1) / (
        np.linalg.norm(g_pre, axis=1) * np.linalg.norm(g_post, axis=1) + 1e-12
    )
    tilt = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    above = mag > 1.5
    crossings = np.sum(above[:, 1:] & ~above[:, :-1], axis=1)
    above2 = mag > 2.0
    crossings2 = np.sum(above2[:, 1:] & ~above2[:, :-1], axis=1)
    up = g_pre / (np.linalg.norm(g_pre, axis=1, keepdims=True) + 1e-12)
    vert_before = np.sum(g[rows, p[:, None] + np.arange(-sec, 0)] * up[:, None, :], axis=2)
    dev = np.abs(mag - 1.0)
    pre_sma, _ = _masked_stats(dev, pre)
    post_sma, _ = _masked_stats(dev, post)
    peak = mag[np.arange(count), p]
    descent = _descent(w, g, mag, p, up)
    out = np.column_stack(
        [
            peak,
            before.min(axis=1),
            np.mean(before < 0.6, axis=1),
            (sec - np.argmin(before, axis=1)) / RATE_HZ,
            jerk.max(axis=1),
            np.mean(np.abs(around - 1.0), axis=1),
            np.sum(around > 1.5, axis=1) / RATE_HZ,
            pre_std,
            pre_mean,
            post_std,
            post_mean,
            still,
            tilt,
            crossings,
            mag.std(axis=1),
            mag.max(axis=1) - mag.min(axis=1),
            vert_before.min(axis=1),
            pre_sma,
            post_sma,
            mag[:, -sec:].std(axis=1),
            crossings2,
            *descent,
        ]
    )
    return np.asarray(out, dtype=np.float64)


def _descent(
    w: F64, g: F64, mag: F64, p: npt.NDArray[np.int64], up: F64
) -> tuple[F64, F64, F64, F64]:
    """descent_v_ms, vert_v_ms, turn_pre_deg, descent_turn_dps (see FEATURES). Only the
    samples around the impact are touched (the impact is >= 2 s from either end, so no
    moving mean here reaches past the window)."""
    sec, k = int(RATE_HZ), int(RATE_HZ) // 2  # k: the moving mean's length (0.5 s)
    rows = np.arange(len(w))[:, None]
    p1 = p[:, None]
    lo = int(1.5 * RATE_HZ)
    before = p1 + np.arange(-lo, 0)
    speed = _max_interval_sum((1.0 - mag[rows, before]) * GRAVITY / RATE_HZ)
    vert = np.sum(g[rows, before] * up[:, None, :], axis=2)
    vert_speed = _max_interval_sum((1.0 - vert) * GRAVITY / RATE_HZ)
    half = k // 2
    first = g[rows, p1 - lo + np.arange(-half, k - half)].mean(axis=1)
    last = g[rows, p1 - sec // 4 + np.arange(-half, k - half)].mean(axis=1)
    turn = _angle_deg(first, last)
    lag, stop = sec // 5, int(0.3 * RATE_HZ)  # directions 0.2 s apart, until 0.3 s before
    raw = g[rows, p1 + np.arange(-lo - half, -stop + lag + k - half - 1)]
    unit = raw / (np.linalg.norm(raw, axis=2, keepdims=True) + 1e-12)
    c = np.cumsum(np.concatenate([np.zeros((len(w), 1, 3)), unit], axis=1), axis=1)
    smooth = (c[:, k:] - c[:, :-k]) / k  # centred on p - lo ... p - stop + lag - 1
    rate = _angle_deg(smooth[:, lag:], smooth[:, :-lag]) / (lag / RATE_HZ)
    return speed, vert_speed, turn, rate.max(axis=1)


def _max_interval_sum(v: F64) -> F64:
    """Per row, the largest sum of ``v`` over any run of consecutive samples (0 if none)."""
    c = np.concatenate([np.zeros((len(v), 1)), np.cumsum(v, axis=1)], axis=1)
    return np.asarray(np.max(c - np.minimum.accumulate(c, axis=1), axis=1), dtype=np.float64)


def _angle_deg(a: F64, b: F64) -> F64:
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
    return np.asarray(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), dtype=np.float64)


def _masked_stats(values: F64, mask: npt.NDArray[np.bool_]) -> tuple[F64, F64]:
    n = np.maximum(np.sum(mask, axis=1), 1)
    mean = np.sum(values * mask, axis=1) / n
    var = np.sum(((values - mean[:, None]) ** 2) * mask, axis=1) / n
    return mean, np.sqrt(var)


def recording_features(samples: npt.ArrayLike, rate_hz: float) -> tuple[F64, F64]:
    """A whole recording: (features per window, impact time in seconds per window)."""
    w = windows(resample(samples, rate_hz))
    starts = np.arange(len(w)) * STEP_S
    return features(w), starts + peak_index(w) / RATE_HZ if len(w) else np.zeros(0)
