"""The instruction a person would give the reactor for a recorded interaction ("shake their hand").

Reaction examples carry, half of the time, an instruction written from the clip: the reactor's part
in words, optionally with the style ("hug them back hesitantly"). The live instruction path reads the
same kind of sentence from the user ("wave at them"), so training and use meet in the same place.
Several wordings per part keep a model from keying on one string; the sentence encoder or the LLM's
tokenizer turns them into what the model reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# The reactor's part of each generator interaction (data/synth.py INTERACTIONS), a few wordings each.
REACTOR_PARTS: dict[str, tuple[str, ...]] = {
    "beckon": ("go over to them", "come when they call you", "walk up to them"),
    "bow": ("bow back", "return the bow", "bow to them"),
    "fist_bump": ("bump fists with them", "give them a fist bump", "fist bump"),
    "hand_over": ("take what they hand you", "accept the object", "take it from them"),
    "handshake": ("shake their hand", "shake hands with them", "give them a handshake"),
    "high_five": ("high-five them", "give them a high five", "slap their hand up high"),
    "hug": ("hug them back", "return the hug", "give them a hug"),
    "kick": ("jump back from the kick", "dodge their kick", "hop out of reach"),
    "lead_follow": ("follow them", "walk after them", "go where they go"),
    "mirror": ("mirror their moves", "copy their dance", "dance like they do"),
    "point_look": ("look where they point", "follow their pointing", "look over there"),
    "punch": ("dodge the punch", "block their punch", "avoid the hit"),
    "push": ("stumble back when pushed", "get pushed back", "fall back a step"),
    "wave": ("wave back", "wave back at them", "return the wave"),
}

STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "aggressive": ("aggressively", "with force"),
    "calm": ("calmly", "in a calm way"),
    "friendly": ("in a friendly way", "warmly"),
    "hesitant": ("hesitantly", "shyly"),
    "playful": ("playfully", "in a playful way"),
}


def reactor_instruction(
    meta: Mapping[str, Any], rng: np.random.Generator, style_share: float = 0.5
) -> str | None:
    """One wording of the reactor's part of a clip (None when the clip's interaction has none).

    With chance `style_share` the clip's style is named too ("wave back shyly").
    """
    parts = REACTOR_PARTS.get(str(meta.get("interaction")))
    if not parts:
        return None
    text = parts[int(rng.integers(len(parts)))]
    styles = STYLE_WORDS.get(str(meta.get("style")))
    if styles and rng.random() < style_share:
        text = f"{text} {styles[int(rng.integers(len(styles)))]}"
    return text


def all_instructions() -> list[str]:
    """Every wording `reactor_instruction` can return (to embed once, ahead of training)."""
    out = []
    for parts in REACTOR_PARTS.values():
        for part in parts:
            out.append(part)
            out.extend(f"{part} {w}" for ws in STYLE_WORDS.values() for w in ws)
    return out
