"""Caption templates of the procedural generator: several phrasings per interaction.

Every template names the actor ({a}) and the reactor ({b}) and carries the style, either as an
adverb before the verb ({adv}) or as a phrase ({manner}), so a model trained on them learns roles
and style from text, not only the interaction's name. {hand} is "left" or "right".
"""

from __future__ import annotations

import numpy as np

# How people are named in captions: neutral role pairs (who acts first / the other), and fixed
# labels of person index 0 and 1 (so "person A" always means positions[0]).
NEUTRAL_ROLES: tuple[tuple[str, str], ...] = (
    ("one person", "the other"),
    ("one person", "the other person"),
    ("a person", "their partner"),
    ("someone", "the other person"),
    ("a person", "another person"),
)
INDEXED_LABELS: tuple[tuple[str, str], ...] = (
    ("person A", "person B"),
    ("the first person", "the second person"),
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "handshake": (
        "{a} {adv} reaches out a {hand} hand and {b} shakes it.",
        "{a} offers a handshake {manner}, and {b} takes the hand and shakes it.",
        "Two people shake hands: {a} {adv} starts, {b} responds.",
        "{a} {adv} extends a hand towards {b}, who grasps it for a handshake.",
        "{b} shakes hands with {a}, who {adv} offered the {hand} hand first.",
    ),
    "wave": (
        "{a} {adv} waves at {b}, and {b} waves back.",
        "{a} raises the {hand} hand and waves {manner}; {b} answers with a wave.",
        "{a} greets {b} with a wave {manner} and {b} returns the greeting.",
        "Waving {manner}, {a} says hello and {b} waves in return.",
        "{b} waves back after {a} {adv} waves with the {hand} hand.",
    ),
    "hug": (
        "{a} {adv} walks into a hug with {b}, who hugs back.",
        "{a} opens both arms {manner} and embraces {b}; {b} returns the hug.",
        "Two people hug: {a} {adv} initiates and {b} wraps the arms around them.",
        "{a} {adv} hugs {b} and {b} hugs back before they let go.",
    ),
    "push": (
        "{a} {adv} pushes {b} in the chest and {b} stumbles backwards.",
        "{a} shoves {b} {manner} with both hands; {b} staggers back.",
        "{b} is pushed {manner} by {a} and stumbles a few steps back.",
        "{a} {adv} steps forward and pushes {b}, who loses balance and steps back.",
    ),
    "punch": (
        "{a} {adv} throws a {hand} punch at {b}, who {react}.",
        "{a} punches {manner} towards the head of {b}; {b} {react}.",
        "{a} {adv} attacks {b} with a punch and {b} {react}.",
        "Fighting {manner}, {a} swings a {hand} fist at {b} and {b} {react}.",
    ),
    "high_five": (
        "{a} {adv} raises a {hand} hand and {b} gives them a high five.",
        "{a} and {b} high-five {manner}; {a} starts it.",
        "{a} holds a hand up {manner} and {b} slaps it in a high five.",
        "{b} answers the raised hand of {a} with a high five, {manner}.",
    ),
    "bow": (
        "{a} {adv} bows to {b}, and {b} bows back.",
        "{a} bends forward in a bow {manner}; {b} returns the bow.",
        "{b} bows in response after {a} {adv} bows.",
        "Bowing {manner}, {a} greets {b}, who bows in return.",
    ),
    "hand_over": (
        "{a} {adv} hands an object to {b}, who takes it.",
        "{a} holds something out {manner} with the {hand} hand and {b} reaches to take it.",
        "{b} receives an object that {a} {adv} passes over.",
        "{a} {adv} gives {b} something and {b} grabs it and looks at it.",
    ),
    "lead_follow": (
        "{a} {adv} turns and walks away, and {b} follows behind.",
        "{a} leads the way {manner} while {b} walks after them.",
        "{b} follows {a}, who {adv} leads them somewhere.",
        "{a} walks off {manner} and {b} trails after them.",
    ),
    "mirror": (
        "{a} dances {manner} and {b} mirrors every move.",
        "{b} copies the dance moves of {a} like a mirror, {manner}.",
        "{a} {adv} moves the arms and body and {b} mirrors them.",
        "Facing each other, {a} {adv} leads a dance and {b} imitates it as a mirror image.",
    ),
    "beckon": (
        "{a} {adv} beckons {b} to come closer, and {b} walks over.",
        "{a} waves {b} over {manner} with the {hand} hand; {b} approaches.",
        "{b} walks up to {a} after {a} {adv} gestures them to come.",
        "Calling with a hand gesture {manner}, {a} invites {b} over and {b} comes closer.",
    ),
    "point_look": (
        "{a} {adv} points to the {dir} and {b} turns to look there.",
        "{a} points {manner} with the {hand} arm and {b} looks where they point.",
        "{b} looks in the direction that {a} {adv} points at.",
        "{a} {adv} shows {b} something to the {dir}; {b} follows the pointing with their eyes.",
    ),
    "kick": (
        "{a} {adv} kicks at {b}, who jumps back to avoid it.",
        "{a} throws a {hand} kick {manner} and {b} leaps backwards.",
        "{b} jumps back as {a} {adv} kicks towards them.",
        "Kicking {manner}, {a} attacks {b}, who hops back out of reach.",
    ),
    "fist_bump": (
        "{a} {adv} holds out a fist and {b} bumps it.",
        "{a} and {b} bump fists {manner}, {a} first.",
        "{b} answers the fist of {a} with a fist bump, {manner}.",
        "{a} {adv} offers a {hand} fist bump and {b} returns it.",
    ),
}

# What each solo segment adds to a caption (`synth._prelude`/`_postlude`; the solo actions of
# `synth.SOLO_ACTIONS` only with `SynthConfig.solo_actions`). No phrase names an interaction or a
# style in the words `llm.caption_labels` reads them by ("punches", "something", "quickly" would),
# so a solo action never changes what a caption is judged to say.
PRELUDE_PHRASES: dict[str, str] = {
    "walk_in": "{w} walks up first. ",
    "look_around": "After looking around, ",
    "turn_to_face": "{w} turns around to face the other. ",
    "crouch": "{w} crouches down and gets back up. ",
    "pick_up": "{w} bends down to pick a thing up from the floor. ",
    "reach_up": "{w} reaches up high first. ",
    "reach_side": "{w} reaches out to the side first. ",
    "reach_forward": "{w} reaches forward first. ",
    "turn_around": "{w} turns around on the spot and back. ",
    "side_step": "{w} steps to the side and back. ",
    "step_back": "{w} steps back and forward again. ",
    "shadow_box": "{w} shadow-boxes, jabbing at the air. ",
    "gesture": "{w} makes a few brisk hand gestures. ",
    "idle": "",
}
POSTLUDE_PHRASES: dict[str, str] = {
    "step_back": " Then {w} steps back.",
    "walk_away": " Afterwards {w} walks away.",
    "look_around": " Then {w} looks around.",
    "crouch": " Then {w} crouches down and gets back up.",
    "pick_up": " Then {w} bends down to pick a thing up from the floor.",
    "reach_up": " Then {w} reaches up high.",
    "reach_side": " Then {w} reaches out to the side.",
    "reach_forward": " Then {w} reaches forward.",
    "turn_around": " Then {w} turns around on the spot.",
    "side_step": " Then {w} steps to the side.",
    "shadow_box": " Then {w} shadow-boxes, jabbing at the air.",
    "gesture": " Then {w} makes a few brisk hand gestures.",
    "idle": "",
}


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def make_captions(
    rng: np.random.Generator,
    interaction: str,
    adverbs: tuple[str, ...],
    manners: tuple[str, ...],
    actor: int,
    hand: str,
    extra: dict[str, str] | None = None,
    prelude: tuple[str, str] | None = None,
    postlude: tuple[str, str] | None = None,
    count: int = 4,
) -> list[str]:
    """`count` distinct captions for one clip, mixing neutral and indexed role names.

    prelude/postlude: (kind, who) where who is "actor", "reactor" or "both"; mentioned in some
    captions so the text also covers the solo parts.
    """
    templates = list(TEMPLATES[interaction])
    order = rng.permutation(len(templates))
    out: list[str] = []
    for k in range(count):
        tpl = templates[order[k % len(templates)]]
        if k % 2 == 0:
            a, b = NEUTRAL_ROLES[rng.integers(len(NEUTRAL_ROLES))]
        else:
            labels = INDEXED_LABELS[rng.integers(len(INDEXED_LABELS))]
            a, b = labels[actor], labels[1 - actor]
        fields = {"a": a, "b": b, "adv": adverbs[rng.integers(len(adverbs))]}
        fields["manner"] = manners[rng.integers(len(manners))]
        fields["hand"] = hand
        fields.update(extra or {})
        text = _cap(tpl.format(**fields))
        names = {"actor": a, "reactor": b, "both": "each of them"}
        if prelude is not None and k == 1 and PRELUDE_PHRASES.get(prelude[0]):
            phrase = _cap(PRELUDE_PHRASES[prelude[0]].format(w=names[prelude[1]]))
            text = phrase + (text[:1].lower() + text[1:] if phrase.endswith(", ") else text)
        if postlude is not None and k == 2 and POSTLUDE_PHRASES.get(postlude[0]):
            text = text + POSTLUDE_PHRASES[postlude[0]].format(w=names[postlude[1]])
        if text not in out:
            out.append(text)
    return out
