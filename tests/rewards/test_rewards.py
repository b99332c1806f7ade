import numpy as np
import pytest

from adan.rewards import AdaptiveReward, RewardFunction, SimpleReward
from tests.rewards.outcomes import outcome


def test_simple_reward_is_scaled_net_log_return():
    rew = SimpleReward(scale=10.0)
    assert isinstance(rew, RewardFunction)
    r, comps = rew(outcome([0.01, -0.02]))
    assert r.dtype == np.float32
    np.testing.assert_allclose(r, [0.1, -0.2], rtol=1e-6)
    np.testing.assert_array_equal(comps["log_return"], [0.01, -0.02])


def only(name, **kw):
    weights = {f"w_{k}": 0.0 for k in ("return", "sharpe", "sortino", "drawdown", "turnover")}
    weights[f"w_{name}"] = 1.0
    return AdaptiveReward(**{"scale": 1.0, **weights, **kw})


def test_differential_sharpe_zero_at_start_then_positive_for_good_returns():
    rew = only("sharpe")
    rew.reset(2)
    r, comps = rew(outcome([0.01, 0.0]))
    np.testing.assert_array_equal(comps["sharpe"], [0.0, 0.0])  # no variance yet: guarded
    for _ in range(20):
        r, comps = rew(outcome([0.01, 0.0]))
        assert comps["sharpe"][0] > 0 and np.isfinite(comps["sharpe"]).all()
        np.testing.assert_array_equal(comps["sharpe"][1], 0.0)
    np.testing.assert_allclose(r, comps["sharpe"].astype(np.float32))


def test_differential_sharpe_matches_the_ema_sharpe_increment():
    """Moody & Saffell: dS/d(eta) at eta=0 -- check against a finite difference."""
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, 200)
    eta = 1e-4
    rew = only("sharpe", eta=eta)
    rew.reset(1)
    for x in returns[:-1]:
        rew(outcome([x]))
    a, b = rew.mean[0], rew.second[0]
    _, comps = rew(outcome([returns[-1]]))
    sharpe = lambda a, b: a / np.sqrt(b - a * a)  # noqa: E731
    x = returns[-1]
    h = 1e-7
    fd = (sharpe(a + h * (x - a), b + h * (x * x - b)) - sharpe(a, b)) / h
    assert comps["sharpe"][0] == pytest.approx(fd, rel=1e-5)


def test_sortino_term_zero_until_a_loss_then_punishes_losses():
    rew = only("sortino")
    rew.reset(1)
    for _ in range(5):
        _, comps = rew(outcome([0.01]))
        assert comps["sortino"][0] == 0.0
    rew(outcome([-0.02]))
    _, gain = rew(outcome([0.01]))
    _, loss = rew(outcome([-0.02]))
    assert gain["sortino"][0] > 0 > loss["sortino"][0]
    assert np.abs(loss["sortino"][0]) <= rew.clip


def test_drawdown_penalty_only_when_drawdown_increases():
    rew = only("drawdown")
    rew.reset(3)
    r, comps = rew(
        outcome([0.0, 0.0, 0.0], drawdown=[0.10, 0.05, 0.2], prev_drawdown=[0.05, 0.10, 0.2])
    )
    np.testing.assert_allclose(comps["drawdown"], [-0.05, 0.0, 0.0])
    np.testing.assert_allclose(r, [-0.05, 0.0, 0.0], rtol=1e-6)


def test_turnover_penalty_proportional_to_turnover():
    rew = only("turnover", scale=2.0)
    rew.reset(3)
    r, comps = rew(outcome([0.0, 0.0, 0.0], turnover=[0.0, 0.5, 1.0]))
    np.testing.assert_allclose(comps["turnover"], [0.0, -0.5, -1.0])
    np.testing.assert_allclose(r, [0.0, -1.0, -2.0])


def test_weights_select_and_combine_components():
    rng = np.random.default_rng(1)
    kw = dict(w_return=0.7, w_sharpe=0.2, w_sortino=0.3, w_drawdown=1.5, w_turnover=0.1, scale=3.0)
    rew = AdaptiveReward(**{"scale": 1.0, **kw})
    rew.reset(4)
    for _ in range(30):
        dd = rng.uniform(0, 0.2, 4)
        r, c = rew(outcome(rng.normal(0, 0.01, 4), rng.uniform(0, 1, 4), dd, dd[::-1]))
        expected = 3.0 * (
            0.7 * c["return"]
            + 0.2 * c["sharpe"]
            + 0.3 * c["sortino"]
            + 1.5 * c["drawdown"]
            + 0.1 * c["turnover"]
        )
        np.testing.assert_allclose(r, expected.astype(np.float32), rtol=1e-5, atol=1e-7)
    ret_only = only("return")
    ret_only.reset(2)
    r, _ = ret_only(outcome([0.01, -0.03], turnover=1.0, drawdown=0.5))
    np.testing.assert_allclose(r, [0.01, -0.03], rtol=1e-6)


def test_reset_envs_clears_only_masked_envs_and_state_round_trips():
    rew = AdaptiveReward(scale=1.0)
    rew.reset(3)
    for x in (0.01, -0.02, 0.03):
        rew(outcome([x, x, x]))
    state = rew.state_dict()
    rew.reset_envs(np.array([False, True, False]))
    assert rew.mean[1] == 0 and rew.second[1] == 0 and rew.downside[1] == 0
    assert rew.mean[0] == state["mean"][0] != 0
    other = AdaptiveReward(scale=1.0)
    other.load_state_dict(state)
    rew.load_state_dict(state)
    a, _ = rew(outcome([0.02, 0.02, 0.02]))
    b, _ = other(outcome([0.02, 0.02, 0.02]))
    np.testing.assert_array_equal(a, b)


def test_no_nan_for_zero_returns():
    rew = AdaptiveReward(scale=1.0)
    rew.reset(2)
    for _ in range(10):
        r, comps = rew(outcome([0.0, 0.0]))
        assert np.all(np.isfinite(r)) and np.all(r == 0)
        assert all(np.isfinite(v).all() for v in comps.values())


def test_invalid_parameters_rejected():
    with pytest.raises(ValueError, match="reward.eta"):
        AdaptiveReward(scale=1.0, eta=0.0)
