"""Where a result was measured: the peak memory of one unit of work."""

import numpy as np

from harness.environment import PeakMemory


def test_a_new_measurement_starts_below_an_earlier_peak():
    first = PeakMemory()
    held = np.ones(300 << 20, dtype=np.uint8)  # 300 MiB, resident
    del held
    peak = first.bytes()
    second = PeakMemory()
    assert first.scope == second.scope == "unit"  # Linux: the high-water mark can be reset
    assert second.bytes() < peak - (250 << 20)
    assert first.bytes() < peak - (250 << 20)  # one process, one mark: the reset starts it anew for all
