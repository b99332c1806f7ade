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
HOURLY_24X7 = 24 * 365  # bars per year of data that does not say (hand-built bars)


def market_key(rule: str) -> str:
    """Observation key of a higher timeframe's feature window, e.g. ``market_4h``."""
    return f"market_{rule}"


@dataclass(frozen=True)
class MarketSpec:
    """One market split as a task trades it; build it with :meth:`of`. Every component that
    needs the data, the trading rules, the window or the annualisation takes this one object
    (the simulator, both envs, the evaluator, the backtest and the baselines)."""

    data: MarketData
    trading: TradingConfig
    window: int
    bars_per_year: float

    @classmethod
    def of(
        cls,
        data: MarketData,
        trading: TradingConfig | None = None,
        *,
        window: int,
        bars_per_year: float | None = None,
    ) -> MarketSpec:
        """The spec of ``data`` traded under ``trading`` (None: ``TradingConfig()``) with
        ``window`` bars of history per observation. ``bars_per_year`` None takes the data's own
        (``meta``, from its bar interval and calendar; a value far from it is refused, see
        ``resolve_bars_per_year``), or hourly 24x7 bars (8760) for data that does not say."""
        if int(window) != window or window < 1:
            raise ValueError(f"env.window must be a positive integer, got {window!r}")
        if "bars_per_year" in data.meta:
            bars_per_year = resolve_bars_per_year(bars_per_year, data.meta)
        elif bars_per_year is None:
            bars_per_year = HOURLY_24X7
        if bars_per_year <= 0:
            raise ValueError(f"data.bars_per_year must be > 0, got {bars_per_year!r}")
        trading = TradingConfig() if trading is None else trading
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
