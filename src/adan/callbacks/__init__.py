"""Lightning callbacks of our own; timers and progress bars are Lightning's."""

from adan.callbacks.checkpoint import RunCheckpoint
from adan.callbacks.memory import MemoryMonitor
from adan.callbacks.progress import TrainingProgressBar
from adan.callbacks.run_spec import RunSpec
from adan.callbacks.shutdown import GracefulShutdown
from adan.callbacks.trading_metrics import TradingMetrics

__all__ = [
    "GracefulShutdown",
    "MemoryMonitor",
    "RunCheckpoint",
    "RunSpec",
    "TradingMetrics",
    "TrainingProgressBar",
]
