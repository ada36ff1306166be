"""Three or more people, one at a time: each newcomer is a reaction to one member of the group.

The motion-language model knows two people. A group is grown incrementally: the chosen partner's
motion goes in as person a, the model's reaction task writes person b, and b joins the group after
a refinement against EVERY member (refine.refine_person: out of everyone's body, at the partner's
distance, facing the partner or the group's centre, feet on the floor and pinned).

    group = clip.positions                                            # (2, T, 22, 3)
    group = add_person(Generator(mlm), codec, group, "joins the handshake", partner=1)  # (3, T, 22, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from molam_ros.coordination.metrics import check_people
from molam_ros.coordination.refine import RefineConfig, refine_person


def react_to(generator: Any, codec: Any, partner: np.ndarray, text: str | None = None) -> np.ndarray:
    """(T, 22, 3) float32 world positions of the model's reaction to one (T, 22, 3) person.

    The partner is encoded alone (person a's canonical frame is theirs anyway), the reaction task
    (Task.REACTION) generates person b step by step against a's codes, and the pair is decoded
    together and put back into the world with the partner's transform. The codes cover whole steps
    of `codec.stride` frames; the last few frames (fewer than one step) hold the final pose.
    """
    from molam_ros.llm.prompts import MotionCodes, Task

    partner = check_people(np.asarray(partner)[None])[0]
    T = partner.shape[0]
    codes, transform = codec.encode(partner[None].astype(np.float32))  # (1, L, D)
    result = generator.run(Task.REACTION, text=text, motion=MotionCodes(a=codes[0]))
    b = np.asarray(result.motion.b)
    steps = min(len(b), codes.shape[1])
    pair = codec.decode(np.stack([codes[0, :steps], b[:steps]]), transform)  # (2, steps l, 22, 3)
    new = np.asarray(pair[1], dtype=np.float32)[:T]
    if new.shape[0] < T:
        new = np.concatenate([new, np.repeat(new[-1:], T - new.shape[0], axis=0)])
    return new


def group_centre(positions: np.ndarray) -> np.ndarray:
    """(T, 3) mean root (pelvis) position of everyone in (P, T, 22, 3), on the floor (y = 0)."""
    centre = check_people(positions)[:, :, 0].mean(axis=0)
    centre[:, 1] = 0.0
    return centre


def add_person(
    generator: Any,
    codec: Any,
    positions: np.ndarray,
    text: str | None = None,
    partner: int = 0,
    *,
    face_group: bool = False,
    interaction: str | None = None,
    config: RefineConfig | None = None,
) -> np.ndarray:
    """(P + 1, T, 22, 3) float32: the group with one more person, who reacts to person `partner`.

    generator: a molam_ros.llm.generate.Generator; codec: a molam_ros.llm.motion_io.MotionCodec;
    positions: (P, T, 22, 3) world positions of the group (P >= 1, T at least one codec step);
    text: an instruction for the reaction (optional, as in the reaction task);
    face_group: turn the newcomer towards the centre of the existing group instead of the partner;
    interaction: a key of synth.INTERACTIONS for the distance band and allowed contacts with the
    partner (default: the generic band). Nobody already in the group is moved.
    """
    group = check_people(positions)
    if not 0 <= partner < group.shape[0]:
        raise ValueError(f"partner {partner} is not one of the group's {group.shape[0]} people")
    new = react_to(generator, codec, group[partner], text)
    target = group_centre(group) if face_group and group.shape[0] > 1 else None
    new = refine_person(
        group, new, partner=partner, interaction=interaction, config=config, face_target=target
    )
    return np.concatenate([group.astype(np.float32), new[None]], axis=0)
