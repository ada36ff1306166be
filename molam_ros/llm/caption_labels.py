"""Which interaction type and style a free caption names, in the generator's vocabulary.

Judges motion-to-text: a generated caption matches a clip when both labels equal the clip's meta
fields. Read with regular expressions written from the generator's caption templates and style
keywords, so it shares nothing with the model it judges.

    interaction, style = caption_labels("Person A shyly waves at person B, who waves back.")
"""

from __future__ import annotations

import re

from molam_ros.data.synth import STYLES

# Phrases that name each interaction, written from the caption templates of `captions.py` (every
# template contains at least one) plus the obvious word forms. Checked in this order and the first
# interaction with a match wins: specific phrases come before words that other interactions also
# use ("gives ... a high five" is a high five, not a hand-over; "waves them over" is beckoning, not
# a wave; "follows the pointing" is pointing; "leads a dance" is mirroring; "fist bump" is not a
# punch).
INTERACTION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("high_five", r"high[- ]?fiv(e|es|ed|ing)"),
    ("fist_bump", r"fist[- ]?bump|\bbump"),
    ("handshake", r"hand[- ]?shak|\b(shak(e|es|ing|en)|shook)( \S+){0,2} (hands?|it)\b"),
    ("beckon", r"\bbeckon|\bcom(e|es|ing) (closer|over)\b|\bto come\b|\binvit"
               r"|\bwav(e|es|ed|ing) \S+( \S+){0,2} over\b"),
    ("mirror", r"\bmirror|\bdanc(e|es|ed|ing)\b|\bimitat|\bcop(y|ies|ied|ying)\b"),
    ("point_look", r"\bpoint(s|ed|ing)?\b"),
    ("lead_follow", r"\bfollow(s|ed|ing)?\b|\blead(s|ing)?\b|\btrail(s|ed|ing)? after\b"),
    ("hand_over", r"\bobject\b|\bsomething\b|\bhand(s|ed|ing)? over\b|\bpass(es|ed|ing)?\b|\breceiv"
                  r"|\bgiv(e|es|ing)\b|\bgave\b|\btak(e|es|ing) it\b"),
    ("hug", r"\bhug|\bembrac"),
    ("push", r"\bpush|\bshov(e|es|ed|ing)\b"),
    ("punch", r"\bpunch|\bfist"),
    ("kick", r"\bkick"),
    ("bow", r"\bbow(s|ed|ing)?\b"),
    ("wave", r"\bwav(e|es|ed|ing)\b"),
)  # fmt: skip
_INTERACTION_RE = tuple((key, re.compile(pat, re.IGNORECASE)) for key, pat in INTERACTION_PATTERNS)


def _style_phrases() -> dict[str, tuple[str, ...]]:
    """Words naming each style: the generator's keywords plus the style's own name.

    The name matters for model output that paraphrases ("a friendly handshake", "calm bow").
    """
    return {name: tuple(dict.fromkeys((*style.keywords, name))) for name, style in STYLES.items()}


STYLE_PHRASES: dict[str, tuple[str, ...]] = _style_phrases()
_STYLE_RE = tuple(
    (name, re.compile(r"\b(" + "|".join(re.escape(p) for p in phrases) + r")\b", re.IGNORECASE))
    for name, phrases in STYLE_PHRASES.items()
)


def caption_interaction(caption: str) -> str | None:
    """The interaction type a caption names (first match of `INTERACTION_PATTERNS`), or None."""
    for key, pattern in _INTERACTION_RE:
        if pattern.search(caption):
            return key
    return None


def caption_style(caption: str) -> str | None:
    """The style a caption names, or None; with several, the one named first in the text."""
    best: tuple[int, str] | None = None
    for name, pattern in _STYLE_RE:
        m = pattern.search(caption)
        if m is not None and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return None if best is None else best[1]


def caption_labels(caption: str) -> tuple[str | None, str | None]:
    """(interaction, style) a free caption names, in the generator's vocabulary; None where it names none.

    Judges motion-to-text: the caption matches a clip when both equal the clip's meta fields.
    """
    return caption_interaction(caption), caption_style(caption)
