"""What a task trades: one market split, its trading rules and the observation window.

A ``MarketSpec`` is built once per task (training, validation, a backtest) and answers what
every consumer needs to know before a simulator exists: the observation's keys and shapes
and the annualisation, which describes the data (its bar interval and calendar) rather than
the env. Spaces (``adan.envs.spaces.spaces_of``) and policies are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from adan.data.bars import MarketData
from adan.data.calendar import resolve_bars_per_year
from adan.data.regimes import NUM_REGIMES
from adan.market.config import TradingConfig

PORTFOLIO_EXTRA = 2  # portfolio vector = A weights + cash fraction + drawdown


def market_key(rule: str) -> str:
    """Observation key of a higher timeframe's feature window, e.g. ``market_4h``."""
    return f"market_{rule}"


@dataclass(frozen=True)
class MarketSpec:
    data: MarketData
    trading: TradingConfig
    window: int
    bars_per_year: float

    @classmethod
    def of(
        cls,
        data: MarketData,
        trading: TradingConfig,
        window: int,
        bars_per_year: float | None = None,
    ) -> MarketSpec:
        """The spec of ``data``; ``bars_per_year`` None takes the data's own (a configured
        value far from the data's is refused, see ``resolve_bars_per_year``)."""
        if "bars_per_year" in data.meta:
            bars_per_year = resolve_bars_per_year(bars_per_year, data.meta)
        if bars_per_year is None:
            raise ValueError("the data carries no bars_per_year: pass it")
        return cls(data, trading, int(window), float(bars_per_year))

    @property
    def bar_interval(self) -> str | None:
        """The data's bar interval (e.g. ``1h``), when its timestamps tell."""
        return self.data.meta.get("bar_interval")

    @property
    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        """The one place that names the observation's keys, with the shape of one env's."""
        a = self.data.num_assets
        shapes: dict[str, tuple[int, ...]] = {
            "market": (self.window, a, self.data.num_features),
            **{
                market_key(rule): (tf.window, a, tf.features.shape[-1])
                for rule, tf in self.data.timeframes.items()
            },
            "portfolio": (a + PORTFOLIO_EXTRA,),
        }
        if self.trading.regime.observe:
            shapes["regime"] = (NUM_REGIMES,)
        return shapes
