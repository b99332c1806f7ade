import numpy as np
import pytest

from adan.data import FeatureScaler, split_by_fraction


def test_chronological_non_overlapping_with_embargo():
    b = split_by_fraction(1000, train=0.7, val=0.15, test=0.15, embargo=10)
    assert list(b) == ["train", "val", "test"]
    (s0, e0), (s1, e1), (s2, e2) = b["train"], b["val"], b["test"]
    assert s0 == 0 and e2 == 1000
    assert s1 - e0 == 10 and s2 - e1 == 10  # embargo bars dropped between splits
    assert s0 < e0 <= s1 < e1 <= s2 < e2
    assert e0 - s0 == int(0.7 * 980) and e1 - s1 == int(0.15 * 980)


def test_fractions_below_one_leave_tail_unused():
    b = split_by_fraction(1000, train=0.5, val=0.2, test=0.2)
    assert b == {"train": (0, 500), "val": (500, 700), "test": (700, 900)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0.8, "val": 0.2, "test": 0.2}, "exceed 1"),
        ({"train": -0.1}, "train=-0.1"),
        ({"val": 0.0}, "val=0.0"),
        ({"test": 1.5}, "test=1.5"),
        ({"embargo": -1}, "embargo=-1"),
        ({"embargo": 2.5}, "embargo=2.5"),
    ],
)
def test_bad_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_fraction(1000, **kwargs)


def test_scaler_standardises_train_and_ignores_other_data():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(1000, 2, 3)) * np.array([1.0, 100.0, 0.01])
    train = x[:700]
    scaler = FeatureScaler().fit(train)
    z = scaler.transform(train)
    assert z.dtype == np.float32 and z.flags.c_contiguous
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    y = x.copy()
    y[700:] *= 50.0  # changing val/test leaves the train-fitted scaler unchanged
    again = FeatureScaler().fit(y[:700])
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.std, scaler.std)


def test_clip_std_floor_and_state_dict_roundtrip():
    x = np.zeros((100, 1, 2))
    x[:, 0, 1] = np.arange(100)
    scaler = FeatureScaler(clip=3.0).fit(x)
    z = scaler.transform(x + 1e3)
    assert np.isfinite(z).all() and np.abs(z).max() == 3.0  # constant feature: no inf
    state = scaler.state_dict()
    assert isinstance(state["mean"], list) and isinstance(state["mean"][0][0], float)
    restored = FeatureScaler.from_state_dict(state)
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))


def test_transform_before_fit_raises():
    with pytest.raises(RuntimeError, match="before fit"):
        FeatureScaler().transform(np.zeros((2, 1, 1)))
