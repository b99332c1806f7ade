"""The market-regime vocabulary: the four regimes a bar can be in, and their int codes.

The one home of these names. The synthetic market draws its true regimes with these codes,
the detector (``adan.data.regime_detection``) labels real bars with them, and the simulator, the
rewards and the reports read them.
"""

from __future__ import annotations

BULL, BEAR, SIDEWAYS, VOLATILE = 0, 1, 2, 3
REGIME_NAMES: tuple[str, ...] = ("bull", "bear", "sideways", "volatile")
NUM_REGIMES = len(REGIME_NAMES)
