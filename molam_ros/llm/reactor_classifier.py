"""Which interaction a reactor is doing, judged from the reactor alone: its motion and its placement.

Steerability asks whether an instruction changes what the reactor does, with the same person in
front of it. The pair classifier (llm/interaction_classifier.py) would also read the person, who is
the same in both runs, so this one describes only the reactor: its own signals towards its partner
(where it stands and faces, its hands and feet relative to the partner's body), pooled over time, and
the same small MLP. Trained on the recorded reactors of a dataset's training clips.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from molam_ros.data.clip import MotionClip
from molam_ros.llm.interaction_classifier import (
    _POOLS,
    _SIGNALS,
    FPS,
    InteractionClassifier,
    _person_signals,
    _pool,
)
from molam_ros.motion.canonical import canonicalize


class ReactorClassifier(InteractionClassifier):
    """InteractionClassifier whose descriptor is the reactor's alone (module docstring).

    Positions given to `predict` are (actor, reactor); a dataset clip is reordered by its meta["actor"].
    """

    descriptor_dim: ClassVar[int] = len(_POOLS) * len(_SIGNALS)
    file_format: ClassVar[str] = "molam-reactor-classifier"

    def descriptors(self, positions: np.ndarray, fps: float = FPS) -> np.ndarray:
        canon, _ = canonicalize(np.asarray(positions, dtype=np.float64))
        return _pool(_person_signals(canon[1], canon[0], fps))[None].astype(np.float32)

    def clip_descriptors(self, clip: MotionClip) -> np.ndarray:
        pos = clip.positions[::-1] if clip.meta.get("actor") == 1 else clip.positions
        return self.descriptors(pos, clip.fps)
