"""mink's collision limit with its bound in the units of the QP's variable.

mink (1.x) solves for a displacement dq = v dt: `G dq <= h`. Its ConfigurationLimit and
VelocityLimit give h as a displacement (gain (q_max - q), v_max dt), but CollisionAvoidanceLimit
gives h = gain (d - d_min) / dt, a velocity: with dt = 1/30 s the pair may close 30 times the
gap that is left in one solve, so the constraint almost never binds. Measured on G1 (a test
in tests/test_collision_guard.py): a shoulder rolled straight into the torso through it. This
wrapper asks the wrapped limit for its bound at dt = 1 s, which is gain (d - d_min): the gap may
close by at most `gain` of what is left per solve, as mink's documentation describes.
"""

from __future__ import annotations

import mink
from mink.limits.limit import Constraint, Limit


class DisplacementCollisionLimit(Limit):
    """`mink.CollisionAvoidanceLimit` whose bound is a displacement (module docstring)."""

    def __init__(self, inner: mink.CollisionAvoidanceLimit) -> None:
        self.inner = inner

    def compute_qp_inequalities(self, configuration: mink.Configuration, dt: float) -> Constraint:
        return self.inner.compute_qp_inequalities(configuration, 1.0)
