"""Parametric indicators against plain-Python reference loops; resolver; parallel computing."""

import math
import statistics
from dataclasses import replace

import numpy as np
import pytest

from adan.data import FEATURES, Bars, SyntheticMarket, compute_features
from adan.data.features import (
    DEFAULT_FEATURES,
    feature_kinds,
    feature_warmup,
    is_known_feature,
    resolve_feature,
    select_assets,
)
from adan.data.schema import MarketPipelineSchema
from adan.errors import ConfigError

T, A = 260, 3
NAN = float("nan")


@pytest.fixture(scope="module")
def walk() -> Bars:
    """A random walk with a few flat steps and zero-volume bars."""
    rng = np.random.default_rng(42)
    ret = rng.normal(0, 0.01, size=(T, A)) * (1 + np.arange(A))
    ret[rng.random((T, A)) < 0.05] = 0.0  # unchanged closes: sign 0 for OBV
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.002, size=(T, A)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, size=(T, A))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, size=(T, A))))
    volume = rng.lognormal(10, 1, size=(T, A))
    volume[rng.random((T, A)) < 0.03] = 0.0
    ts = np.arange(T).astype("datetime64[h]").astype("datetime64[ns]")
    return Bars(ts, ("a", "b", "c"), open_, high, low, close, volume)


# --- plain-Python references, one asset at a time --------------------------------------------


def ref_ema(xs: list[float], alpha: float) -> list[float]:
    out, y = [], None
    for x in xs:
        if y is None and math.isnan(x):
            out.append(NAN)
            continue
        y = x if y is None else (1 - alpha) * y + alpha * x
        out.append(y)
    return out


def div(a: float, b: float) -> float:
    return a / b if b != 0 else 0.0


def true_range(h, lo, c, t):
    if t == 0:
        return h[0] - lo[0]
    return max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))


def ref_momentum(h, lo, c, v, n):
    return [math.log(c[t] / c[t - n]) if t >= n else NAN for t in range(len(c))]


def ref_volatility(h, lo, c, v, n):
    r = [NAN] + [math.log(c[t] / c[t - 1]) for t in range(1, len(c))]
    return [statistics.stdev(r[t - n + 1 : t + 1]) if t >= n else NAN for t in range(len(c))]


def ref_rsi(h, lo, c, v, n):
    d = [NAN] + [c[t] - c[t - 1] for t in range(1, len(c))]
    gain = ref_ema([max(x, 0.0) if not math.isnan(x) else NAN for x in d], 1 / n)
    loss = ref_ema([max(-x, 0.0) if not math.isnan(x) else NAN for x in d], 1 / n)
    return [div(g - q, g + q) for g, q in zip(gain, loss, strict=True)]


def ref_atr(h, lo, c, v, n):
    tr = [true_range(h, lo, c, t) for t in range(len(c))]
    return [x / c[t] for t, x in enumerate(ref_ema(tr, 1 / n))]


def ref_ema_ratio(h, lo, c, v, n):
    return [c[t] / e - 1 for t, e in enumerate(ref_ema(c, 2 / (n + 1)))]


def ref_adx(h, lo, c, v, n):
    plus, minus, tr = [NAN], [NAN], [NAN]
    for t in range(1, len(c)):
        up, down = h[t] - h[t - 1], lo[t - 1] - lo[t]
        plus.append(up if up > down and up > 0 else 0.0)
        minus.append(down if down > up and down > 0 else 0.0)
        tr.append(true_range(h, lo, c, t))
    sp, sm, st = ref_ema(plus, 1 / n), ref_ema(minus, 1 / n), ref_ema(tr, 1 / n)
    dx = [NAN]
    for t in range(1, len(c)):
        pdi, mdi = div(sp[t], st[t]), div(sm[t], st[t])
        dx.append(div(abs(pdi - mdi), pdi + mdi))
    return ref_ema(dx, 1 / n)


def ref_volume_ratio(h, lo, c, v, n):
    out = []
    for t in range(len(c)):
        out.append(
            math.log1p(div(v[t], statistics.fmean(v[t - n + 1 : t + 1]))) if t >= n - 1 else NAN
        )
    return out


def ref_obv_ratio(h, lo, c, v, n):
    out = []
    for t in range(len(c)):
        if t < n:
            out.append(NAN)
            continue
        ks = range(t - n + 1, t + 1)
        signed = sum(math.copysign(v[k], c[k] - c[k - 1]) if c[k] != c[k - 1] else 0 for k in ks)
        out.append(div(signed, sum(v[k] for k in ks)))
    return out


def ref_bollinger(h, lo, c, v, n):
    out = []
    for t in range(len(c)):
        w = c[t - n + 1 : t + 1]
        out.append(div(c[t] - statistics.fmean(w), 2 * statistics.stdev(w)) if t >= n - 1 else NAN)
    return out


def ref_volume_z(h, lo, c, v, n):
    lv = [math.log1p(x) for x in v]
    out = []
    for t in range(len(c)):
        w = lv[t - n + 1 : t + 1]
        out.append(div(lv[t] - statistics.fmean(w), statistics.stdev(w)) if t >= n - 1 else NAN)
    return out


REFERENCES = {
    "momentum": (ref_momentum, lambda n: n),
    "volatility": (ref_volatility, lambda n: n),
    "rsi": (ref_rsi, lambda n: n),
    "atr": (ref_atr, lambda n: n),
    "ema_ratio": (ref_ema_ratio, lambda n: n),
    "adx": (ref_adx, lambda n: 2 * n),
    "volume_ratio": (ref_volume_ratio, lambda n: n - 1),
    "obv_ratio": (ref_obv_ratio, lambda n: n),
    "bollinger": (ref_bollinger, lambda n: n - 1),
    "volume_z": (ref_volume_z, lambda n: n - 1),
}
CASES = [(kind, n) for kind in REFERENCES for n in (2, 7, 21)]
ALL_NAMES = list(
    dict.fromkeys(
        ["log_return", "macd_hist", "bollinger", "volume_z"]
        + [f"{kind}_{n}" for kind, n in CASES]
        + list(DEFAULT_FEATURES)
    )
)


def test_every_kind_has_a_reference():
    parametric = {k.removesuffix("_<n>") for k in feature_kinds() if k.endswith("_<n>")}
    assert parametric == set(REFERENCES)


@pytest.mark.parametrize(("kind", "n"), CASES)
def test_matches_reference_loop(walk, kind, n):
    ref, warmup = REFERENCES[kind]
    name = f"{kind}_{n}"
    x, w = compute_features(walk, [name])
    assert w == warmup(n) == feature_warmup(name) == resolve_feature(name).warmup
    assert np.isnan(x[:w]).all()  # NaN before the warm-up, never zero-filled
    assert np.isfinite(x[w:]).all()
    for a in range(A):
        cols = [walk.high[:, a], walk.low[:, a], walk.close[:, a], walk.volume[:, a]]
        expected = np.array(ref(*(col.tolist() for col in cols), n))
        np.testing.assert_allclose(x[w:, a, 0], expected[w:], rtol=1e-9, atol=1e-12, err_msg=name)


def test_bounded_indicators(walk):
    x, w = compute_features(walk, ["adx_14", "obv_ratio_24", "rsi_7", "volume_ratio_24"])
    assert ((x[w:, :, 0] >= 0) & (x[w:, :, 0] <= 1)).all()
    assert (np.abs(x[w:, :, 1]) <= 1).all() and (np.abs(x[w:, :, 2]) <= 1).all()
    assert (x[w:, :, 3] >= 0).all()


def test_named_features_equal_their_parametric_form(walk):
    pairs = [("bollinger", "bollinger_20"), ("volume_z", "volume_z_24")]
    for fixed, parametric in pairs:
        x, w = compute_features(walk, [fixed, parametric])
        np.testing.assert_array_equal(x[..., 0], x[..., 1])
        assert feature_warmup(fixed) == feature_warmup(parametric)
    # MACD stays 12/26/9
    c = walk.close[:, 0].tolist()
    fast, slow = ref_ema(c, 2 / 13), ref_ema(c, 2 / 27)
    macd = [f - s for f, s in zip(fast, slow, strict=True)]
    hist = [(m - s) / p for m, s, p in zip(macd, ref_ema(macd, 2 / 10), c, strict=True)]
    x, w = compute_features(walk, ["macd_hist"])
    np.testing.assert_allclose(x[w:, 0, 0], hist[w:], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("t", [30, 120, 250])
def test_causal_future_bars_do_not_change_the_past(walk, t):
    rng = np.random.default_rng(t)
    future = slice(t + 1, None)

    def scramble(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[future] *= np.exp(rng.normal(0, 0.3, size=a[future].shape))
        return a

    high, low = scramble(walk.high), scramble(walk.low)
    high[future], low[future] = high[future] * 1.5, low[future] * 0.5
    changed = replace(
        walk,
        open=scramble(walk.open),
        high=high,
        low=low,
        close=scramble(walk.close),
        volume=scramble(walk.volume),
    )
    before, _ = compute_features(walk, ALL_NAMES)
    after, _ = compute_features(changed, ALL_NAMES)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])  # bit-identical
    for i, name in enumerate(ALL_NAMES):
        assert not np.array_equal(before[t + 1 :, :, i], after[t + 1 :, :, i]), name


def test_flat_market_is_finite(walk):
    flat = np.full_like(walk.close, 10.0)
    b = replace(walk, open=flat, high=flat, low=flat, close=flat, volume=np.ones_like(flat))
    x, w = compute_features(b, ALL_NAMES)
    assert np.isfinite(x[w:]).all()


def test_resolver_names_and_errors():
    for name in ["rsi_7", "momentum_48", "momentum_1", "volatility_72", "atr_21", "ema_ratio_50"]:
        assert is_known_feature(name), name
    for name in ["adx_14", "volume_ratio_24", "obv_ratio_24", "bollinger_20", "volume_z_24"]:
        assert is_known_feature(name), name
    for name in ["rsi", "rsi_", "rsi_x", "rsi_014", "rsi_1", "foo_3", "rsi_-3", "RSI_14", ""]:
        assert not is_known_feature(name), name
    assert not is_known_feature(None)  # type: ignore[arg-type]
    assert feature_warmup("rsi_7") == 7 and feature_warmup("adx_10") == 20
    assert feature_warmup("macd_hist") == 34 and feature_warmup("volume_z") == 23
    assert resolve_feature("rsi_7") is resolve_feature("rsi_7")  # cached
    assert "RSI(7)" in resolve_feature("rsi_7").__doc__
    with pytest.raises(ValueError, match="'foo_3'.*adx_<n>.*rsi_<n>"):
        resolve_feature("foo_3")
    with pytest.raises(ValueError, match="n=1 must be >= 2"):
        compute_features(SyntheticMarket(n_bars=50).generate(), ["rsi_1"])
    with pytest.raises(ValueError, match="leading zeros"):
        resolve_feature("rsi_014")
    assert set(FEATURES) == set(DEFAULT_FEATURES)  # the pre-resolved names did not change


def test_schema_uses_the_resolver():
    MarketPipelineSchema(source=object(), features=["rsi_7", "adx_14", "log_return"])
    with pytest.raises(ConfigError, match=r"data.features must name known.*obv_ratio_<n>.*'rsi_x'"):
        MarketPipelineSchema(source=object(), features=["rsi_7", "rsi_x"])


# --- parallel computing ------------------------------------------------------------------------


def test_select_assets_slices_every_asset_field(walk):
    mask = np.zeros((T, A), dtype=bool)
    mask[::7, 2] = True
    extra = {"filled": mask} if "filled" in walk.__dataclass_fields__ else {}
    b = replace(walk, regimes=np.zeros(T, dtype=np.int8), **extra)
    sub = select_assets(b, [2, 0])
    assert sub.assets == ("c", "a")
    for field in ("open", "high", "low", "close", "volume", *extra):
        np.testing.assert_array_equal(getattr(sub, field), getattr(b, field)[:, [2, 0]])
        assert getattr(sub, field).flags.c_contiguous
    assert sub.regimes is b.regimes and sub.timestamps is b.timestamps
    with pytest.raises(IndexError):
        select_assets(walk, [3])


def test_parallel_is_bit_identical_to_serial():
    bars = SyntheticMarket(n_assets=5, n_bars=400, seed=5).generate()
    names = ALL_NAMES
    serial, w1 = compute_features(bars, names)
    for n_jobs in (2, -1):
        par, w2 = compute_features(bars, names, n_jobs=n_jobs)
        assert w1 == w2 and par.shape == serial.shape and par.dtype == serial.dtype
        np.testing.assert_array_equal(par, serial)  # bit-identical, NaN rows included
    for i in range(5):  # any chunking gives the same columns, down to single assets
        one, _ = compute_features(select_assets(bars, [i]), names)
        np.testing.assert_array_equal(one[:, 0], serial[:, i])
    with pytest.raises(ValueError, match="n_jobs=0"):
        compute_features(bars, names, n_jobs=0)
