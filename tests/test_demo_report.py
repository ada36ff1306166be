"""The demo's report (ros/demo_report.py): aligning recorded topics by stamp."""

from __future__ import annotations

import numpy as np

from molam_ros.ros.demo_report import _nearest


def test_a_lost_partner_sample_keeps_the_partner() -> None:
    """One recorded-partner sample lost in transport (best-effort) leaves a gap of 2 frames: the
    partner stays in the report (the nearest sample shown there); with most samples gone it does not."""
    at = np.arange(60) / 30.0
    values = np.arange(60.0)
    gap = np.delete(np.arange(60), [30])
    got = _nearest(at[gap], values[gap], at, tol=0.02, min_share=0.9)
    assert got is not None and got[29] == 29 and got[31] == 31
    assert _nearest(at[gap], values[gap], at, tol=0.02) is None  # every frame required: dropped
    assert _nearest(at[::3], values[::3], at, tol=0.02, min_share=0.9) is None  # two in three lost
