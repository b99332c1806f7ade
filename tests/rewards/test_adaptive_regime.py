"""Regime-aware weighting of the adaptive reward: gradual switches, exact neutrality without
regimes, per-episode reset, checkpoints, validation and Hydra composition."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from adan.data.regimes import BEAR, BULL, VOLATILE
from adan.errors import ConfigError
from adan.rewards import AdaptiveReward, StepOutcome
from adan.rewards.adaptive import COMPONENTS
from adan.tasks.registry import register_configs, validate_config
from tests.rewards.outcomes import outcome

CONF = str(Path(__file__).resolve().parents[2] / "conf")
RETURN, DRAWDOWN = COMPONENTS.index("return"), COMPONENTS.index("drawdown")


def return_only(**kw) -> AdaptiveReward:
    rew = AdaptiveReward(scale=1.0, w_return=1.0, w_sharpe=0.0, w_sortino=0.0, w_drawdown=0.0, **kw)
    rew.reset(2)
    return rew


def random_steps(seed, n=3, steps=60, regimes=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        dd = rng.uniform(0, 0.2, n)
        regime = rng.integers(0, 4, n) if regimes else None
        out.append(
            outcome(rng.normal(0, 0.01, n), rng.uniform(0, 1, n), dd, dd[::-1], regime=regime)
        )
    return out


def test_a_regime_switch_changes_the_weighted_reward_gradually():
    rew = return_only(
        w_turnover=0.0, regime_weights={"bear": {"return": 3.0}}, regime_smoothing=0.25
    )
    r = 0.01
    for _ in range(5):
        reward, comps = rew(outcome([r, r], regime=[BULL, BULL]))
        np.testing.assert_allclose(reward, [r, r], rtol=1e-6)
    rewards = []
    for _ in range(40):
        reward, comps = rew(outcome([r, r], regime=[BEAR, BULL]))
        rewards.append(reward[0])
        np.testing.assert_allclose(reward[1], r, rtol=1e-6)  # the env still in bull: unchanged
        np.testing.assert_array_equal(comps["return"], [r, r])  # components stay unweighted
    k = np.arange(1, 41)
    np.testing.assert_allclose(rewards, r * (3.0 - 2.0 * 0.75**k), rtol=1e-6)
    assert np.all(np.diff(rewards) > 0) and rewards[0] < 1.6 * r  # gradual, not a jump
    np.testing.assert_allclose(rew.multipliers[0, RETURN], 3.0, rtol=1e-4)
    np.testing.assert_array_equal(np.delete(rew.multipliers[0], RETURN), 1.0)


def test_without_regime_weights_or_regimes_the_reward_is_bit_identical():
    steps = random_steps(0)
    weighted = {"volatile": {"drawdown": 4.0, "turnover": 0.0}, "bull": {"sharpe": 2.0}}
    variants = [
        (
            AdaptiveReward(scale=1.0),
            False,
        ),  # today's reward, outcomes without regimes: the reference
        (AdaptiveReward(scale=1.0), True),
        (AdaptiveReward(scale=1.0, regime_weights=None), True),
        (AdaptiveReward(scale=1.0, regime_weights={}), True),
        (AdaptiveReward(scale=1.0, regime_weights={"bull": {}, "bear": {"return": 1.0}}), True),
        (AdaptiveReward(scale=1.0, regime_weights=weighted), False),
    ]
    results = []
    for rew, with_regime in variants:
        rew.reset(3)
        run = []
        for o in steps:
            o = o if with_regime else StepOutcome(**{**vars(o), "regime": None})
            run.append(rew(o))
        results.append(run)
    for run in results[1:]:
        for (r0, c0), (r1, c1) in zip(results[0], run, strict=True):
            np.testing.assert_array_equal(r0, r1)
            for name in c0:
                np.testing.assert_array_equal(c0[name], c1[name])
    # ... and the weights do change it once regimes are given.
    rew = AdaptiveReward(scale=1.0, regime_weights=weighted)
    rew.reset(3)
    changed = [
        not np.array_equal(rew(o)[0], ref[0]) for o, ref in zip(steps, results[0], strict=True)
    ]
    assert any(changed)


def test_a_new_episode_starts_at_its_regime_weights_not_the_old_episode_mix():
    rew = return_only(
        w_turnover=0.0, regime_weights={"volatile": {"return": 2.0}}, regime_smoothing=0.1
    )
    for _ in range(3):
        rew(outcome([0.01, 0.01], regime=[BULL, BULL]))
    rew.reset_envs(np.array([True, False]))
    np.testing.assert_array_equal(rew.multipliers[0], 1.0)
    reward, _ = rew(outcome([0.01, 0.01], regime=[VOLATILE, VOLATILE]))
    np.testing.assert_allclose(reward, [0.02, 0.01 * (1 + 0.1)], rtol=1e-6)


def test_multipliers_round_trip_through_state_dict():
    steps = random_steps(1)
    kw = dict(regime_weights={"volatile": {"drawdown": 3.0}, "bear": {"return": 0.5}})
    first, second = AdaptiveReward(**{"scale": 1.0, **kw}), AdaptiveReward(scale=1.0, **kw)
    first.reset(3)
    for o in steps[:30]:
        first(o)
    state = first.state_dict()
    assert state["multipliers"].shape == (3, len(COMPONENTS))
    second.load_state_dict(state)
    state["multipliers"][:] = -1.0  # the reward keeps its own copy
    for o in steps[30:]:
        np.testing.assert_array_equal(first(o)[0], second(o)[0])
    np.testing.assert_array_equal(first.multipliers, second.multipliers)


def test_a_checkpoint_without_multipliers_loads_neutral_and_fresh():
    rew = AdaptiveReward(scale=1.0, regime_weights={"bear": {"drawdown": 2.0}})
    rew.reset(2)
    rew(outcome([0.01, -0.01], regime=[BULL, BEAR]))
    old = {k: v for k, v in rew.state_dict().items() if k in ("mean", "second", "downside")}
    rew.load_state_dict(old)
    np.testing.assert_array_equal(rew.multipliers, 1.0)
    rew(outcome([0.0, 0.0], regime=[BEAR, BEAR]))
    np.testing.assert_array_equal(rew.multipliers[:, DRAWDOWN], [2.0, 2.0])


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"regime_weights": {"bul": {"return": 1.0}}}, "reward.regime_weights"),
        ({"regime_weights": {"bull": {"retrun": 1.0}}}, "reward.regime_weights.bull"),
        ({"regime_weights": {"bull": {"return": -1.0}}}, "reward.regime_weights.bull.return"),
        ({"regime_weights": {"bear": {"sharpe": "x"}}}, "reward.regime_weights.bear.sharpe"),
        (
            {"regime_weights": {"bear": {"sharpe": float("nan")}}},
            "reward.regime_weights.bear.sharpe",
        ),
        ({"regime_weights": {"bear": 2.0}}, "reward.regime_weights.bear"),
        ({"regime_smoothing": 0.0}, "reward.regime_smoothing"),
        ({"regime_smoothing": 1.5}, "reward.regime_smoothing"),
    ],
)
def test_bad_regime_settings_name_the_full_key(kw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + " "):
        AdaptiveReward(**{"scale": 1.0, **kw})


def test_bad_regime_codes_are_refused_naming_the_envs():
    rew = AdaptiveReward(scale=1.0, regime_weights={"bear": {"return": 2.0}})
    rew.reset(3)
    with pytest.raises(ValueError, match=r"out of range .* envs \[2\]"):
        rew(outcome([0.0, 0.0, 0.0], regime=[0, 1, 7]))
    with pytest.raises(ValueError, match="must be int"):
        rew(outcome([0.0, 0.0, 0.0], regime=[0, 1]))


def composed(*overrides):
    register_configs()
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose(
            "train", overrides=["paths.output_dir=/tmp/adan-run", "reward=adaptive", *overrides]
        )


def test_regime_weights_compose_validate_and_instantiate_from_hydra():
    default = composed()
    validate_config(default)
    shipped = instantiate(default.reward).regime_weights  # conf/reward/adaptive.yaml's table
    assert shipped[VOLATILE, DRAWDOWN] == 2.0 and shipped[BULL].tolist() == [1.0] * 5
    off = composed("reward.regime_weights=null")
    assert instantiate(off.reward).regime_weights is None  # off: bit-identical
    cfg = composed(
        "reward.regime_weights.volatile.drawdown=3",  # an int in YAML / the command line
        "+reward.regime_weights.bull={return: 0.5}",
        "reward.regime_smoothing=0.2",
    )
    validate_config(cfg)
    rew = instantiate(cfg.reward)
    assert rew.regime_smoothing == 0.2
    assert rew.regime_weights[VOLATILE, DRAWDOWN] == 3.0
    assert rew.regime_weights[BULL, RETURN] == 0.5
    # the shipped volatile turnover and sideways turnover (2.0 each) stay; the rest are 1.0
    assert rew.regime_weights.sum() == 3.0 + 0.5 + 2.0 + 2.0 + (4 * len(COMPONENTS) - 4)
    with pytest.raises(ConfigError, match=r"reward\.regime_weights\.volatile\.drawdown "):
        validate_config(composed("reward.regime_weights.volatile.drawdown=-1"))
    with pytest.raises(ConfigError, match=r"reward\.regime_weights "):
        validate_config(composed("+reward.regime_weights.calm.drawdown=1"))
