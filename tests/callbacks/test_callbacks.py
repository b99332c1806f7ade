import numpy as np
import pytest

from adan.callbacks import MemoryMonitor


def test_memory_monitor_collects_above_threshold_and_reports():
    mon = MemoryMonitor(threshold_percent=0.01)  # any machine is above 0.01% used
    garbage = [[i] for i in range(10_000)]
    garbage.append(garbage)  # a reference cycle only the collector frees
    del garbage
    stats = mon.check()
    assert mon.collections == 1 and stats["memory/gc_collections"] == 1.0
    assert stats["memory/process_rss_mib"] > 10 and 0 < stats["memory/system_percent"] <= 100


def test_memory_monitor_stays_idle_below_threshold():
    mon = MemoryMonitor(threshold_percent=100.0)
    mon.check()
    assert mon.collections == 0


def test_memory_monitor_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold_percent"):
        MemoryMonitor(threshold_percent=0)
    assert np.isfinite(MemoryMonitor().check()["memory/freed_mib"])
