"""Edit variants: a generated interaction performed again in another style, as ground truth for editing.

An editing turn ("make it hesitant") needs a pair of motions that differ ONLY in what the
instruction names. Two random clips of the same interaction differ in everything else too (who
acts, which hand, what happens before and after), so a model trained on them would learn to redo
the whole scene. The generator keeps every style-independent random choice when only the style
changes (`generate_clip(seed, interaction, other_style)`), so the same seed in another style is the
same scene done differently. A few draws still depend on style (a slow style leaves no time for a
walk away at the end), so each variant is checked to have its source's layout and dropped if not.

A variant's id is `<source id>_<style>`; its meta holds `edit_of: <source id>`, which
`write_dataset` uses to put it in the same split as its source (no train/test leakage).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from molam_ros.data.clip import MotionClip
from molam_ros.data.synth import STYLES, SynthConfig, generate_clip

# Meta keys that are no part of a scene's layout: they may differ between a clip and its variant.
_NOT_LAYOUT = {"style", "description", "distance", "min_gap", "seed", "source", "edit_of"}


def layout(meta: dict[str, Any]) -> tuple:
    """What an edit variant must share with its source: interaction, roles, hand, the segments'
    kinds, actions and people (not their frames, which the style's tempo moves), heights, variant."""
    segments = tuple(
        (s.get("kind"), s.get("action"), s.get("person"), s.get("interaction"))
        for s in meta.get("segments", [])
    )
    rest = tuple(sorted((k, repr(v)) for k, v in meta.items() if k not in _NOT_LAYOUT and k != "segments"))
    return segments, rest


def edit_variant(clip: MotionClip, style: str) -> MotionClip | None:
    """`clip` (a generated clip) performed in `style`, or None where the layout would change.

    The source must come from `generate_clip` with an explicit interaction and style, as
    `generate_dataset` makes them: its seed (and the generator options its meta records) then fix
    every other choice.
    """
    meta = clip.meta
    if meta.get("source") != "synth" or "seed" not in meta or "edit_of" in meta:
        return None
    if style == meta.get("style") or style not in STYLES:
        return None
    config = SynthConfig(solo_actions=float(meta.get("solo_actions", 0.0)))
    other = generate_clip(int(meta["seed"]), str(meta["interaction"]), style, config)
    if layout(other.meta) != layout(meta):
        return None
    other.name = f"{clip.name}_{style}"
    other.meta["edit_of"] = clip.name
    return other


def with_edit_variants(
    clips: Iterable[MotionClip], fraction: float, *, seed: int, count: int | None = None
) -> Iterator[MotionClip]:
    """`clips`, each followed with probability `fraction` by an edit variant in another style.

    Stops after `count` clips in all (variants included) so a dataset keeps the size asked for.
    The choices come from their own random stream: the source clips are the same whatever the
    fraction. A source whose variants all change layout goes without one.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"edit variant fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng([seed, 0xED17])
    written = 0
    for clip in clips:
        if count is not None and written >= count:
            return
        yield clip
        written += 1
        wanted = rng.random() < fraction  # drawn for every clip: the stream does not depend on the data
        order = rng.permutation(sorted(STYLES))
        if not wanted or (count is not None and written >= count):
            continue
        variant = next((v for s in order if (v := edit_variant(clip, str(s))) is not None), None)
        if variant is not None:
            yield variant
            written += 1
