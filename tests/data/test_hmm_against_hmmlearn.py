"""Our HMM's forward filter against hmmlearn's on the same model and observations.

``GaussianHMM.filter`` gives P(state_t | obs_<=t) by the forward recursion. hmmlearn exposes
only smoothed posteriors, but the smoothed posterior of the LAST bar of a sequence is its
filtered one, so hmmlearn's posterior of the last bar of every prefix obs[:t+1] must equal
our filter at t. The model is the one our EM fits (means, diagonal variances, fixed
transitions, uniform start), handed to hmmlearn with its own fitting switched off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn import hmm as hmmlearn

from adan.data.regime_detection import GaussianHMM, MarketRegimeDetector, RegimeConfig
from adan.data.synthetic import SyntheticMarket


@pytest.fixture(scope="module")
def fitted():
    market = SyntheticMarket(n_assets=2, n_bars=3000, seed=5).generate()
    det = MarketRegimeDetector(RegimeConfig(method="hmm", hmm_iterations=5))
    det.fit(market.high[:2000], market.low[:2000], market.close[:2000])
    obs = det._hmm_obs(market.high, market.low, market.close)[2000:2200]
    return det.hmm, obs


def as_hmmlearn(model: GaussianHMM) -> hmmlearn.GaussianHMM:
    other = hmmlearn.GaussianHMM(
        n_components=len(model.start), covariance_type="diag", init_params="", params=""
    )
    other.startprob_, other.transmat_ = model.start, model.trans
    other.means_, other.covars_ = model.means, model.var
    return other


def test_filtered_state_probabilities_match_hmmlearn(fitted):
    model, obs = fitted
    ours = model.filter(obs)
    theirs = as_hmmlearn(model)
    last_of_prefix = np.stack([theirs.predict_proba(obs[: t + 1])[-1] for t in range(len(obs))])
    np.testing.assert_allclose(ours, last_of_prefix, rtol=1e-7, atol=1e-10)


def test_the_filter_differs_from_smoothing_so_the_check_can_tell(fitted):
    """Sanity of the test above: hmmlearn's smoothed posteriors (which look ahead) are not our
    filtered ones, so comparing with the last bar of each prefix is what makes them agree."""
    model, obs = fitted
    smoothed = as_hmmlearn(model).predict_proba(obs)
    assert np.abs(model.filter(obs) - smoothed).max() > 1e-3
