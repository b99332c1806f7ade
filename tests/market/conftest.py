"""Fixtures for the market tests."""

import pytest

from adan.data.bars import MarketData
from tests.market.markets import random_walk


@pytest.fixture
def market() -> MarketData:
    return random_walk()
