"""The offline planner: English requests to plans by rules, with no model and no network.

It is over 500 lines because the rules are one grammar read together: the word lists, the duration
and number parsing, clause splitting and the step builder refer to each other, and splitting them
would only scatter what a reader needs side by side to see why a request becomes a plan.

It is the embedded default because it is instant, deterministic and always there; the LLM planners
(`backbone_planner`, `openai_planner`) handle wording these rules do not. What it understands:

- sequences: "then", "and then", "after that", "first ... then", "finally", "X before Y", commas,
  and "and" between two actions -> one generate step per piece and a final compose;
- "while": doing two things at once stays ONE step with the combined text; when the other clause is
  the partner's ("clap while she dances", "when he reaches out, shake his hand") it is a react on
  `live`, since the robot must follow what the partner does;
- durations: "for 10 seconds", "for half a minute", "for the next minute", "a 5-second dance",
  clamped to the plan's limits;
- questions: "what did he just do" -> caption, "why ...", "how should you answer", yes/no questions
  -> reason, over `live` (the partner, or "I"/"me": the speaker is the partner), or over `previous`
  or this plan's last motion when the question is about "you" (the robot);
- edits of the last motion: "make that faster", "do it again but angrier", "slower", "same thing but
  with your left hand", "that was too fast", "be more hesitant" -> edit on this plan's last motion or
  on `previous`; with nothing to edit, PlanError when the request names the motion ("make it
  faster"), else a new generate step (a bare "be more hesitant" is still something to do);
- reactions and roles: "react to him", "mirror me", "dance with me", "wave back", "be the
  goalkeeper", "you're the defender" -> react on `live` (generate when no partner is live).

Everything else that reads as an action becomes a generate step with the cleaned text, so unknown
verbs ("moonwalk across the room") still plan. The guard (`guard.py`) runs before any planner; this
one assumes the text is a request, not an attack.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from molam_ros.agent.memory import PlanContext
from molam_ros.agent.plan import (
    LIVE,
    MAX_REPLY,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_TEXT,
    MIN_SECONDS,
    PREVIOUS,
    Plan,
    PlanError,
    Step,
)

log = logging.getLogger(__name__)

_shared_meaning: Any = None
_meaning_lock = threading.Lock()


def shared_meaning() -> Any:
    """The process's MeaningModel (agent/meaning.py), or None when the encoder is not installed."""
    global _shared_meaning
    with _meaning_lock:
        if _shared_meaning is None:
            from molam_ros.agent.encoder import EncoderUnavailableError, encoder_available

            if not encoder_available():
                log.warning("the sentence encoder is not installed: planning by rules alone")
                _shared_meaning = False
            else:
                from molam_ros.agent.meaning import MeaningModel

                try:
                    _shared_meaning = MeaningModel()
                except EncoderUnavailableError as e:
                    log.warning("no sentence encoder (%s): planning by rules alone", e)
                    _shared_meaning = False
    return _shared_meaning or None


def meaning_if_ready() -> Any:
    """The shared MeaningModel if it is loaded, else None at once (never waits for the load)."""
    return _shared_meaning or None


def preload_meaning() -> threading.Thread:
    """Load the shared MeaningModel on a background thread (a live node starts at once and plans
    by the rules alone for the few seconds the encoder takes to load)."""
    thread = threading.Thread(target=shared_meaning, name="molam-encoder-load", daemon=True)
    thread.start()
    return thread


# Base-form verbs that start an action clause: used to tell a new clause ("..., raise both arms") from
# a continuation ("..., slowly") and to split "X and Y" into two actions.
VERBS = frozenset(
    """
    walk run jog sprint step turn spin rotate twirl pivot jump hop skip leap squat kneel sit stand lie
    crouch bend bow nod shake wave point clap hug embrace push pull kick punch hit strike block dodge duck
    catch throw toss pass grab take give hand pick put place lift raise lower reach stretch dance salute
    greet approach go come move back retreat stop pause wait stay hold look face follow lead chase circle
    mirror copy imitate mimic lean lunge march stomp tiptoe sneak slide shuffle celebrate cheer shrug
    beckon applaud fight box spar defend guard play be act pretend pose stumble fall roll crawl climb
    swing wiggle tap pat poke touch help carry escort guide show demonstrate perform do make try keep
    start begin continue finish end react respond answer return repeat rest relax breathe balance
    swim fly float kiss wink smile laugh cry high-five highfive fist-bump tackle shove sway rock bounce
    flex wiggle stamp kneel rise get let open close drop cover protect scratch rub massage offer accept
    pray meditate cartwheel somersault flip moonwalk bring fetch pour drink eat wipe clean hide seek search
    check glide strut skate stroll amble wander pace stagger limp trudge gesture signal thank welcome
    introduce invite usher present tag tickle nudge cuddle bump switch shift cross fold unfold brush
    flap flutter shiver tremble dive tumble curtsy hail blow snap whistle sing hum yawn stir sweep
    dribble shoot serve volley bat kneel settle arch twist tilt shake sidestep backpedal hand tie untie
    zip button fix adjust tuck wear lay set kneel freeze scoot creep slouch straighten wobble jiggle
    shake let don't dont never extend retract spread clasp link join release glance peek stare watch
    observe hunch nudge offer receive wipe dust brush pose strike
    """.split()
)
# Words the lexicon lists as verbs that do not start an action clause in a request.
_NOT_VERBS = frozenset(
    """
    the his her their them him its that this these those then than there here when while with without
    until unless once each every both all any some more most less much many few one two three four five
    six seven eight nine ten second seconds minute minutes time times way side hand hands arm arms leg
    legs foot feet head body floor room door ball partner person man woman guy girl kid people robot
    also too very really just only even still yet again maybe
    """.split()
)
QUESTION_START = re.compile(
    r"^(?:what|why|how|who|whom|whose|where|which|is|are|was|were|did|does|has|have|had|am"
    r"|(?:can|could|would|will|should|shall|must|might)\s+(?:he|she|they|i|we|it|that|this|the\s+\w+)\b"
    r"|do\s+(?:you|i|we|they)\b"
    r"|when\s+(?:did|does|do|is|are|was|were|will|should|can|could|would|has|have)\b"
    r"|tell me|describe|explain|guess|any idea|do you|can you see|can you tell|did you)\b",
    re.IGNORECASE,
)
_CAPTION = re.compile(
    r"^(?:what(?:'s|\s+is|\s+was|\s+are|\s+were|\s+did|\s+does|\s+do)?\s+(?:[\w']+\s+){0,6}?"
    r"(?:do|doing|did|does|done)\b|describe\b"
    r"|(?:tell me|explain|show me|say) what\b.*\b(?:do|doing|did|does|done)\b"
    r"|what(?:'s|\s+is|\s+was)\s+(?:that|this|happening|going on)\b|what do you see\b"
    r"|what\s+(?:just\s+)?happen(?:ed|s)\b"
    r"|what(?:'s|\s+is|\s+are|\s+was|\s+were)\s+(?:[\w']+\s+){1,3}?up to\b)",
    re.IGNORECASE,
)
_REASON_HINT = re.compile(
    r"\b(?:next|should|would|could|will|'ll|think|going to|gonna|mean|means|why|how|feel|feeling|want"
    r"|wants|intend|plan|trying)\b",
    re.IGNORECASE,
)
_RESPONSE_QUESTION = re.compile(
    r"\b(?:should|would|could|can|will|do|must)\s+(?:you|i|we)\s+(?:answer|respond|react|reply|do|greet|handle"
    r"|approach|say|move)\b|\bhow to (?:answer|respond|react|greet)\b",
    re.IGNORECASE,
)
_PARTNER = re.compile(
    r"\b(?:he|she|they|him|her|them|his|hers|their|i|me|my|mine|i'm|im|he's|she's|they're|he'll|she'll"
    r"|the (?:other )?(?:person|man|woman|guy|girl|boy|kid|child|partner|user|player|opponent|human"
    r"|people))\b",
    re.IGNORECASE,
)
_THIRD_PERSON = re.compile(
    r"\b(?:he|she|they|him|her|them|his|hers|their|he's|she's|they're"
    r"|the (?:other )?(?:person|man|woman|guy|girl|boy|kid|child|partner|player|opponent|people))\b",
    re.IGNORECASE,
)
# A question about motion (not small talk) names it: what was done, how to move or answer next.
_MOTION_QUESTION = re.compile(
    r"\b(?:do|doing|did|does|done|move|moving|moved|motion|movements?|step|react|respond|answer|next|should"
    r"|would|could|gesture|pose|dance|dancing|wave|waving|walk|walking)\b",
    re.IGNORECASE,
)
_YOU = re.compile(r"\b(?:you|your|yours|yourself|you've|you're|you'd)\b", re.IGNORECASE)
_CONDITIONAL_START = re.compile(
    r"^(?:while|whenever|when|if|as soon as|once|until|as long as|every time|each time"
    r"|as(?=\s+(?:he|she|they|i|you|we|the)\b))\b",
    re.IGNORECASE,
)
_COMPARATIVES = (
    "faster|slower|quicker|bigger|smaller|higher|lower|wider|narrower|longer|shorter|harder|softer|gentler"
    "|angrier|happier|sadder|calmer|livelier|stronger|weaker|smoother|louder|quieter|tighter|looser|deeper"
    "|closer|further|farther|lighter|heavier|bolder|sharper|slower|crisper|steadier|straighter|cleaner"
    "|wilder|bouncier|sloppier|stiffer|more|less"
)
# Edits that name the last motion ("make it", "do that again", "that was too fast"): with no motion to
# edit, the request cannot be planned. Weak cues (a bare "faster", "this time", "be more hesitant")
# become a new motion instead when there is nothing to edit.
_EDIT_STRONG = re.compile(
    r"^(?:make|do|try|redo|repeat|perform|play|change|speed up|slow down)\s+(?:it|that|this|the same|the last"
    r"(?: one| motion| move)?|that last one|that motion|that move)\b"
    r"|^(?:again|once more|one more time|(?:the )?same(?: thing| motion| move| again)?)\b"
    r"|^(?:(?:it|that|this)\s+)?(?:again|once more)\b"
    r"|^make\s+(?:the|your|that|this|my)\s+(?:[\w-]+\s+){1,3}?(?:a (?:bit|little|lot)\s+)?"
    rf"(?:{_COMPARATIVES})\b"
    r"|^(?:speed|slow|tone|calm|liven|scale|spice|power|dial)\s+(?:it|that|this)\s+(?:up|down)\b"
    r"|\b(?:it|that|this)\s+(?:was|is|looked|looks|felt|seemed)\b.*\b(?:but|too|not \w+ enough)\b",
    re.IGNORECASE,
)
_EDIT_WEAK = re.compile(
    r"^not\s+(?:so|that|as|too)\s+\w+|^(?:(?:way|much|far|a bit|a little|kind of|bit|a tad)\s+)?too\s+\w+"
    r"|^(?:loosen|lighten|tighten|smooth|calm|tone|speed|slow|hurry|liven|chill)\s+(?:it\s+)?(?:up|down|out)\b"
    r"|^(?:be\s+)?(?:(?:a )?(?:bit|little|lot|tad)\s+|a little bit\s+|much\s+|way\s+|even\s+|slightly\s+"
    rf"|somewhat\s+)?(?:{_COMPARATIVES})\b"
    r"|\bthis time\b|\binstead\b|^(?:with|using) (?:your|the) (?:other|left|right)\b"
    r"|^(?:no|nope|not like that|wrong)\b\W+\w|^(?:h+m+\W+)?(?:not quite|not really|almost|close|nearly)\b"
    r"|\b(?:the other|the wrong|the opposite) (?:way|direction|side)\b",
    re.IGNORECASE,
)
_REACT = re.compile(
    r"\b(?:react|respond|reply|answer)\b"
    r"|\b(?:mirror|copy|imitate|mimic)\b"
    r"|\b(?:shadow|follow|match)\s+(?:me|him|her|them|my|his|her|their|what|whatever|everything"
    r"|the (?:other|person|partner))\b"
    r"|\b(?:dodge|block|parry|evade|intercept|catch|defend|guard against|fend off|save)\b"
    r"|\b(?:be|act as|you are|you're|youre|become|play as|play the role of|pretend to be|you will be"
    r"|you'll be)"
    r"\s+(?:the|a|an|my|his|her|their|our)\s+\w+"
    r"|\bplay\s+(?:goalie|goalkeeper|keeper|defen[cs]e|offen[cs]e|catch|tag|patty[- ]?cake|rock[- ]paper"
    r"|keep[- ]?away)\b"
    r"|\b(?:dance|play|spar|fight|box|wrestle|train|practi[cs]e|exercise|tango|waltz|walk|jog|run|move|sway)"
    r"(?:\s+\w+)?\s+(?:along\s+)?with\s+(?:me|him|her|them|us)\b"
    r"|\b(?:dance|play|spar|fight|box|wrestle|train|practi[cs]e|exercise|tango|waltz|walk|jog|run|move|sway)"
    r"\s+together\b"
    r"|\b(?:wave|nod|smile|bow|hug|greet|high[- ]?five|wink|salute|shake|fist[- ]?bump)\b"
    r"(?:\s+\w+){0,2}\s+back\b"
    r"|\bin return\b|\bwhat(?:ever)?\s+(?:he|she|they|i|the other \w+)\s+(?:do|does|did|is doing|are doing)\b"
    r"|\b(?:while|when|whenever|as soon as|until|if|once|every time|each time|as)\s+(?:he|she|they|i|i'm|im"
    r"|he's|she's|they're|the (?:other )?(?:person|man|woman|guy|girl|boy|kid|partner|player|opponent))\b"
    r"|\bkeep (?:your |a )?(?:distance|up with)\b|\bstay (?:close|near|next|with|in front|behind)\b",
    re.IGNORECASE,
)
_AS_MUCH_AS = re.compile(r"\bas\s+[\w-]+\s+as\s+(?:i|you|he|she|they|we)\s+(?:can|could)\b", re.IGNORECASE)
_CHAT = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|thanks|thank you|thx|good (?:job|work|morning|evening|night)|well done"
    r"|nice(?: one)?|great(?: job)?|cool|awesome|perfect|ok(?:ay)?|yes|no|sure|bye|goodbye|sorry|wow|haha"
    r"|lol)(?:\s+(?:there|robot|buddy|again|so much|a lot|everyone|you))*$",
    re.IGNORECASE,
)
_FILLER_WORDS = (
    r"ok|okay|alright|all right|so|now|please|well|hey|um+|uh+|h+m+|erm|ah+|oh+|eh|great|good|nice|cool|right"
    r"|also|robot|hey robot"
)
_FILLER = re.compile(rf"^(?:(?:{_FILLER_WORDS})[\s,]*)+$", re.IGNORECASE)
_PREFIX = re.compile(
    r"^(?:and|then|so|ok(?:ay)?|alright|all right|now|please|kindly|first(?:ly)?|first of all|to start"
    r"|next|finally|lastly|also|afterwards|after that|well|hey|um+|uh+|h+m+|erm|just|start by|begin by"
    r"|go ahead and|i want you to|i'd like you to|i would like you to|i need you to|can you|could you"
    r"|would you(?: please)?"
    r"|will you|would you mind|do you mind|try to|try and|robot|great|nice|cool|good|let's|let us)\b[\s,]*",
    re.IGNORECASE,
)
_SEQUENCE = re.compile(
    r",?\s*\b(?:and\s+then|and\s+after\s+that|after\s+that|afterwards|and\s+finally|finally|then"
    r"|followed\s+by|after\s+which)\b\s*,?\s*|,\s*(?:and\s+)?next\b\s*,?\s*",
    re.IGNORECASE,
)
_BEFORE = re.compile(r"^(?P<a>.+?)\s+before\s+(?:you\s+|(?=\w+ing\b))(?P<b>.+)$", re.IGNORECASE)
_LEADING_BEFORE = re.compile(r"^before\s+(?:you\s+)?(?P<b>[^,]+),\s*(?P<a>.+)$", re.IGNORECASE)
_LEADING_AFTER = re.compile(
    r"^(?:after|once|when|as soon as)\s+you(?:'ve|'re| have| are)?\s+"
    r"(?:(?:finished|done|through)\s+(?:with\s+)?)?"
    r"(?P<a>[^,]+),\s*(?P<b>.+)$|^after\s+(?P<a2>[^,]+),\s*(?P<b2>.+)$",
    re.IGNORECASE,
)

_WORD_NUMBERS: dict[str, float] = {
    "a": 1, "an": 1, "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3, "several": 5,
    "half a": 0.5, "half an": 0.5, "half": 0.5, "a dozen": 12, "dozen": 12,
}  # fmt: skip
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}  # fmt: skip
# Numbers in words, exactly: 0-19, the tens, and every compound ("twenty-five", "twenty five").
_WORD_NUMBERS |= {w: i for i, w in enumerate(_UNITS)} | _TENS
_WORD_NUMBERS |= {f"{t}{sep}{u}": v + i for t, v in _TENS.items() for i, u in enumerate(_UNITS[1:10], 1)
                  for sep in ("-", " ")}  # fmt: skip
_NUM = r"\d+(?:\.\d+)?|" + "|".join(sorted((re.escape(w) for w in _WORD_NUMBERS), key=len, reverse=True))
_UNIT = r"(?P<unit>seconds?|secs?|s|minutes?|mins?)"
_DURATION = re.compile(
    r"\s*\b(?P<prep>for|during|over|in)\s+"
    r"(?:(?:about|around|roughly|approximately|at least|like|maybe|just|a good|a full|another)\s+)?"
    r"(?:the\s+)?(?P<next>next\s+|following\s+|coming\s+)?"
    rf"(?:(?P<num>{_NUM})\s*)?(?:and a half\s+)?{_UNIT}\b(?:\s+and a half\b)?",
    re.IGNORECASE,
)
_DURATION_ADJ = re.compile(
    rf"\b(?P<num>{_NUM})[\s-](?P<unit>seconds?|secs?|minutes?|mins?)(?:[\s-]long)?(?:\s+of)?\s+",
    re.IGNORECASE,
)
# "rest 20 sec", "wave for like ten seconds" without the preposition: a number and a unit of time,
# not after "in", "after", "within" or "every" (those say when, not how long).
_DURATION_BARE = re.compile(
    r"(?<!\bin )(?<!\bafter )(?<!\bwithin )(?<!\bevery )(?<!\beach )"
    rf"\b(?:(?P<digits>\d+(?:\.\d+)?)\s*|(?P<num>{_NUM})[\s-]+)"
    r"(?P<unit>seconds?|secs?|s|minutes?|mins?)\b",
    re.IGNORECASE,
)
_SWAP = {
    "my": "your", "me": "you", "i": "you", "i'm": "you're", "mine": "yours", "myself": "yourself",
    "your": "my", "yours": "mine", "yourself": "myself", "you're": "I'm", "you'll": "I'll",
}  # fmt: skip


@dataclass(frozen=True)
class _Piece:
    """One clause of the request, classified: what kind of step it becomes and with which text."""

    role: str  # generate | react | edit | caption | reason | chat
    text: str
    seconds: float | None = None
    about: str = "live"  # questions: live | self (the robot's own last motion)
    tie: str = ""  # how it follows the clause before: and | comma | sentence | seq ("then") | "" (first)
    strong: bool = False  # edits: names the last motion ("make it ...") rather than only hinting at it


# helper functions


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*", text.lower())


def _clean(text: str) -> str:
    """The clause without politeness, sequencing words and end punctuation."""
    text = " ".join(text.split()).strip(" ,;:")
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text).strip(" ,;:")
    text = re.sub(r"[\s,.!?;:]+$", "", text)
    text = re.sub(r"(?:,?\s+please)+$", "", text, flags=re.IGNORECASE)
    return text.strip()


@lru_cache(maxsize=4096)
def is_verb(word: str) -> bool:
    """Whether `word` starts an action: the list above, else an English lexicon (lemminflect) that
    knows it only as a verb or a noun ("leave", "waltz", "salsa"), never as an adjective, adverb or
    preposition ("right", "down", "back" join phrases rather than start them)."""
    word = word.lower()
    if word in VERBS:
        return True
    if word in _NOT_VERBS or len(word) < 3:
        return False
    try:
        from lemminflect import getAllLemmas
    except ImportError:  # the rules alone still plan
        return False
    lemmas = getAllLemmas(word)
    return "VERB" in lemmas and not {"ADJ", "ADV", "ADP", "AUX", "PRON", "DET"} & set(lemmas)


def _starts_with_verb(text: str) -> bool:
    words = _words(_clean(text))
    return bool(words) and is_verb(words[0])


def _is_clause(part: str) -> bool:
    """Whether a comma-separated part stands on its own (an action, a question, an edit, a role)."""
    text = _clean(part)
    if not text:
        return False
    return bool(
        _starts_with_verb(text)
        or QUESTION_START.match(text)
        or _EDIT_STRONG.search(text)
        or _EDIT_WEAK.search(text)
        or _REACT.match(text)
        or re.match(r"^(?:you|you're|youre|i want)\b", text, re.IGNORECASE)
    )


def _take_duration(text: str) -> tuple[str, float | None]:
    """The text without its duration phrase, and the duration in seconds (None if it has none)."""
    seconds = None
    match = _DURATION.search(text)
    if match and (match.group("prep").lower() != "in" or match.group("next")):
        num = match.group("num")
        value = 1.0 if num is None else float(_WORD_NUMBERS.get(" ".join(num.lower().split()), num) or 1)
        if "and a half" in match.group(0).lower():
            value += 0.5
        unit = match.group("unit").lower()
        seconds = value * (60.0 if unit.startswith("min") else 1.0)
        text = (text[: match.start()] + " " + text[match.end() :]).strip()
    else:
        match = _DURATION_ADJ.search(text) or _DURATION_BARE.search(text)
        if match:
            num = match.groupdict().get("digits") or match.group("num")
            value = float(_WORD_NUMBERS.get(" ".join(num.lower().split()), num))
            seconds = value * (60.0 if match.group("unit").lower().startswith("min") else 1.0)
            text = (text[: match.start()] + " " + text[match.end() :]).strip()
    if seconds is not None:
        seconds = min(max(seconds, MIN_SECONDS), MAX_SECONDS)
    return " ".join(text.split()), seconds


def _split_and(part: str) -> list[str]:
    """'step back and wave' -> two actions; 'what did he do and why' -> two questions.

    Only when the word after 'and' starts an action or a question, so 'raise your left and right arm'
    and 'jump up and down' stay whole; conditional and 'while' clauses are never split.
    """
    text = _clean(part)
    if _CONDITIONAL_START.match(text) or re.search(r"\bwhile\b", text, re.IGNORECASE):
        return [part]
    pieces = re.split(r",?\s+and\s+", part)
    out = [pieces[0]]
    for piece in pieces[1:]:
        starts = _starts_with_verb(piece) or bool(QUESTION_START.match(_clean(piece)))
        if starts and _clean(out[-1]):
            out.append(piece)
        else:
            out[-1] = f"{out[-1]} and {piece}"
    return out


def _split_commas(chunk: str) -> list[str]:
    """Comma-separated parts that stand on their own; the rest are glued back to their neighbour."""
    parts = [p for p in re.split(r",(?!\d)", chunk) if p.strip()]
    out: list[str] = []
    # A conditional ("when he waves") or a leading phrase ("for the next 15 seconds") waiting for
    # the clause it belongs to.
    pending = ""
    for part in parts:
        part, glued = part.strip(), bool(pending)
        if pending:
            part, pending = f"{pending}, {part}", ""
        if _FILLER.match(part):
            continue
        clause = _is_clause(part)
        if not glued and (_CONDITIONAL_START.match(_clean(part)) or (not out and not clause)):
            pending = part
            continue
        starts_but = re.match(r"^\s*(?:but|except|though|although|only|unless)\b", part, re.IGNORECASE)
        if out and (starts_but or not clause):
            out[-1] = f"{out[-1]}, {part}"
        else:
            out.append(part)
    if pending:
        out.append(pending)
    return out


def _reorder(sentence: str) -> list[str]:
    """'wave before you leave' and 'after bowing, wave' in the order they happen."""
    cleaned = sentence.strip()
    m = _LEADING_AFTER.match(cleaned)
    if m and m.group("a"):  # "once you've finished waving, walk over": the robot's own sequence
        return [m.group("a"), m.group("b")]
    if m and not _PARTNER.match(m.group("a2")):  # "after bowing, wave" (not "after he bows, ...")
        return [m.group("a2"), m.group("b2")]
    m = _LEADING_BEFORE.match(cleaned)
    if m:
        return [m.group("a"), m.group("b")]
    m = _BEFORE.match(cleaned)
    if m and not _CONDITIONAL_START.match(_clean(m.group("a"))):
        return [m.group("a"), m.group("b")]
    return [cleaned]


def split_clauses(request: str) -> list[str]:
    """The request cut into clauses in the order they should happen (uncleaned)."""
    return [clause for clause, _ in _clauses(request)]


def _clauses(request: str) -> list[tuple[str, str]]:
    """(clause, how it is tied to the clause before: and | comma | seq | sentence | ""), in order."""
    rank = {"": 0, "and": 1, "comma": 2, "seq": 3, "sentence": 4}
    clauses: list[tuple[str, str]] = []
    crossed = ""  # the strongest boundary crossed since the last clause

    def cross(kind: str) -> None:
        nonlocal crossed
        crossed = kind if rank[kind] > rank[crossed] else crossed

    for i, sentence in enumerate(re.split(r"(?<=[.!?;])\s+|\n+", request.strip())):
        cross("sentence" if i else "")
        sentence = re.sub(r"[.!?;]+$", "", sentence.strip())
        for j, chunk in enumerate(_SEQUENCE.split(sentence)):
            cross("seq" if j else "")
            for k, part in enumerate(_split_commas(chunk) if chunk.strip(" ,") else []):
                cross("comma" if k else "")
                for m, ordered in enumerate(_reorder(part)):
                    cross("seq" if m else "")
                    for n, piece in enumerate(_split_and(ordered)):
                        cross("and" if n else "")
                        if _clean(piece):
                            clauses.append((piece, crossed if clauses else ""))
                            crossed = ""
    return clauses


def _second_person(text: str) -> str:
    """The user's words as the robot says them back ('mirror my moves' -> 'mirror your moves')."""

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low == "you":  # subject before a verb or modal, else object
            after = text[m.end() :].lstrip().split(" ", 1)[0].lower()
            return "I" if after in VERBS or after in {"can", "could", "will", "are", "were", "do"} else "me"
        return _SWAP.get(low, word)

    return re.sub(
        r"\b(?:i'm|you're|you'll|myself|yourself|mine|yours|my|me|i|your|you)\b", swap, text, flags=re.I
    )


@dataclass(frozen=True)
class Understanding:
    """What the rules (and the meaning model) made of a request: a plan, small talk, or why neither."""

    plan: Plan | None = None
    small_talk: bool = False
    error: str | None = None
    reply: str = ""


_NEGATED = re.compile(r"^(?:don'?t|do not|never|no need to|stop|quit|no more)\s+(?P<rest>.+)$", re.IGNORECASE)
_SMALL_TALK_REPLIES = (
    (re.compile(r"\b(?:thanks?|thank you|thx)\b", re.I), "You're welcome!"),
    (re.compile(r"\b(?:hi|hello|hey|hiya|good (?:morning|evening|afternoon))\b", re.I),
     "Hello! Tell me what to do."),
    (re.compile(r"\b(?:bye|goodbye|see you)\b", re.I), "Bye!"),
    (re.compile(r"\b(?:sorry)\b", re.I), "No problem."),
)  # fmt: skip


def small_talk_reply(text: str) -> str:
    """A short spoken answer to small talk (no motion)."""
    for pattern, reply in _SMALL_TALK_REPLIES:
        if pattern.search(text):
            return reply
    return "Thanks! Tell me what to do when you're ready."


class RulesPlanner:
    """Plans English requests by rules (see the module docstring); deterministic and fast.

    `meaning`: the sentence-encoder role model (agent/meaning.py) for clauses the rules have no cue
    for; "auto" (the default) uses the shared one when the encoder package is installed (loading it
    on first use), "background" uses it once `preload_meaning` has loaded it and the rules alone
    until then, None plans by the rules alone.
    """

    # How sure the meaning model must be to overrule the rules' default (a new motion): the role's
    # mean top-3 cosine and its lead over the runner-up (measured on the development set).
    MIN_SCORE, MIN_MARGIN = 0.5, 0.04
    CHAT_SCORE, CHAT_MARGIN = 0.3, 0.1

    def __init__(self, meaning: Any = "auto") -> None:
        self._meaning = meaning

    @property
    def meaning(self) -> Any:
        if self._meaning == "background":  # the node: never wait for the load (preload_meaning)
            return meaning_if_ready()
        if isinstance(self._meaning, str):
            self._meaning = shared_meaning()
        return self._meaning

    def plan(self, request: str, context: PlanContext | None = None) -> Plan:
        """The plan for `request`, or PlanError when it asks to edit a motion that does not exist
        (or is only small talk: nothing to plan)."""
        understood = self.understand(request, context)
        if understood.plan is None:
            raise PlanError(understood.error or "the request is small talk; there is nothing to plan")
        return understood.plan

    def understand(self, request: str, context: PlanContext | None = None) -> Understanding:
        """A plan, or small talk (with a short reply), or the reason there is no plan; never raises."""
        context = context or PlanContext()
        clauses = _clauses(request)
        pieces = [replace(self._classify(c), tie=tie) for c, tie in clauses]
        # The meaning model only for clauses no rule recognised (a new motion by default, or a
        # question that may be small talk), all in one batch.
        unsure = [i for i, p in enumerate(pieces) if p.role in {"generate", "react", "caption", "reason"}]
        meanings = self._meanings([" ".join(clauses[i][0].split()).strip(" ,.;:!?") for i in unsure])
        for i, meaning in zip(unsure, meanings, strict=True):
            if meaning is not None:
                pieces[i] = replace(self._classify(clauses[i][0], meaning), tie=pieces[i].tie)
        if not pieces:  # only fillers ("ok", "cool cool", "hmm"): small talk
            return Understanding(small_talk=True, reply=small_talk_reply(request))
        if all(p.role == "chat" for p in pieces):
            return Understanding(small_talk=True, reply=small_talk_reply(request))
        positive = [p for p in pieces if p.role != "negated"]
        # "Don't wave, just bow": what not to do is dropped; a lone "don't move" is still a motion, and
        # so is a rule of a role ("You're the goalkeeper. Don't let him score!").
        dropped = any(p.role != "chat" for p in positive) and not any(p.role == "react" for p in positive)
        pieces = (
            positive
            if dropped
            else [replace(p, role="generate") if p.role == "negated" else p for p in pieces]
        )
        try:
            pieces = self._merge(pieces)
            steps, reply = self._steps(pieces, context)
            output = next((s.id for s in reversed(steps) if s.makes_motion), None)
            plan = Plan(steps=steps, reply=reply[:MAX_REPLY], output=output)
        except PlanError as e:
            return Understanding(error=str(e))
        except ValueError as e:  # a step the schema rejects (e.g. an empty text): no plan, said why
            return Understanding(error=f"could not make a valid plan: {e}")
        log.debug("rules plan for %r: %s", request, plan.kinds())
        return Understanding(plan=plan)

    def _meanings(self, texts: list[str]) -> list[Any]:
        model = self.meaning if texts else None
        if model is None:
            return [None] * len(texts)
        return model.of(texts)

    # classification

    def _classify(self, clause: str, meaning: Any = None) -> _Piece:
        raw = re.sub(r"[\s,.!?;:]+$", "", " ".join(clause.split())).strip(" ,;:")
        if _CHAT.match(raw) or _FILLER.match(raw):
            return _Piece("chat", raw)
        text, seconds = _take_duration(_clean(clause))
        text = _clean(text) or _clean(clause)
        if _CHAT.match(text):
            return _Piece("chat", text)
        negated = _NEGATED.match(text)
        if negated and _starts_with_verb(negated.group("rest")):
            return _Piece("negated", text, seconds)
        chatty = meaning is not None and self._chatty(meaning)
        if QUESTION_START.match(text) and not _CONDITIONAL_START.match(text):
            rest = text.split(" ", 1)[1] if " " in text else ""
            about_motion = _CAPTION.match(text) or _THIRD_PERSON.search(text) or _MOTION_QUESTION.search(rest)
            if chatty and not about_motion:
                return _Piece("chat", text)  # "how are you?", "where are you from?"
            role = "caption" if _CAPTION.match(text) and not _REASON_HINT.search(text) else "reason"
            about = "live"
            subject = re.sub(
                r"^(?:tell|show|explain to|describe to|say to) me\b", "", text, flags=re.IGNORECASE
            )
            if not _RESPONSE_QUESTION.search(text) and not _PARTNER.search(subject) and _YOU.search(subject):
                about = "self"
            return _Piece(role, text, about=about)
        if _EDIT_STRONG.search(text):
            return _Piece("edit", text, strong=True)
        if _EDIT_WEAK.search(text):
            return _Piece("edit", text, seconds)
        # "as high as I can" compares, it does not follow the partner as "as she approaches" does
        if chatty and not _starts_with_verb(text) and not _THIRD_PERSON.search(text):
            return _Piece("chat", text)  # "you're the best robot ever", "I had a long day"
        if _REACT.search(_AS_MUCH_AS.sub("", text)):
            return _Piece("react", text, seconds)
        if meaning is not None and self._sure(meaning):
            # No rule cue: the meaning decides between a new motion, a reaction, an edit and small talk.
            if meaning.role == "chat" and not _starts_with_verb(text):
                return _Piece("chat", text)
            if meaning.role == "react" and _PARTNER.search(text):
                return _Piece("react", text, seconds)
            if meaning.role == "edit" and not _starts_with_verb(text):
                return _Piece("edit", text, seconds)
            if meaning.role == "edit" and re.search(r"\b(?:it|that|this)\b", text, re.IGNORECASE):
                return _Piece("edit", text, seconds, strong=False)
        return _Piece("generate", text, seconds)

    def _sure(self, meaning: Any) -> bool:
        return meaning.score >= self.MIN_SCORE and meaning.margin >= self.MIN_MARGIN

    def _chatty(self, meaning: Any) -> bool:
        """Small talk by meaning: chat leads every other role clearly (a lower bar on the score, as
        small talk is varied and its examples can only sample it)."""
        if meaning.role != "chat":
            return False
        return self._sure(meaning) or (
            meaning.score >= self.CHAT_SCORE and meaning.margin >= self.CHAT_MARGIN
        )

    @staticmethod
    def _merge(pieces: list[_Piece]) -> list[_Piece]:
        """Adjacent reactions are one reaction, adjacent edits one edit; small talk goes unless alone."""
        talk = [p for p in pieces if p.role != "chat"]
        if not talk:
            return [_Piece("reason", "; ".join(p.text for p in pieces), about="none")]
        out: list[_Piece] = []
        for piece in talk:
            last = out[-1] if out else None
            # "be the goalkeeper and dive for the ball", "You're the goalkeeper. Don't let him score!": an
            # action tied to a role by "and", or after a comma or full stop naming the partner, is the role
            in_role = (
                last is not None
                and last.role == "react"
                and piece.role == "generate"
                and (
                    piece.tie == "and" or (piece.tie in {"comma", "sentence"} and _PARTNER.search(piece.text))
                )
            )
            if last and (in_role or (piece.role == last.role and piece.role in {"react", "edit"})):
                sep = "; " if piece.role == "edit" else ", "
                text, seconds = f"{last.text}{sep}{piece.text}", last.seconds or piece.seconds
                out[-1] = replace(last, text=text, seconds=seconds, strong=last.strong or piece.strong)
            else:
                out.append(piece)
        return out

    # plan building

    @staticmethod
    def _steps(pieces: list[_Piece], context: PlanContext) -> tuple[list[Step], str]:
        pieces = _fit(pieces)
        steps: list[Step] = []
        said: list[str] = []
        asked = False

        def new_id() -> str:
            return f"s{len(steps) + 1}"

        def last_motion() -> str | None:
            return next((s.id for s in reversed(steps) if s.makes_motion), None)

        for piece in pieces:
            text = piece.text[:MAX_TEXT]
            if piece.role in {"caption", "reason"}:
                asked = True
                own = last_motion() or (PREVIOUS if context.previous else None)
                ref = {"live": LIVE if context.live else None, "self": own, "none": None}[piece.about]
                if ref is None and piece.about != "none":
                    ref = (LIVE if context.live else None) or own
                if piece.role == "caption" and ref is not None:
                    steps.append(Step(id=new_id(), kind="caption", inputs=[ref]))
                else:
                    steps.append(Step(id=new_id(), kind="reason", text=text, inputs=[ref] if ref else []))
            elif piece.role == "edit" and (
                target := last_motion() or (PREVIOUS if context.previous else None)
            ):
                steps.append(Step(id=new_id(), kind="edit", text=text, inputs=[target]))
                said.append(f"the last motion again ({_second_person(text)})")
            elif piece.role == "edit" and piece.strong:
                raise PlanError(f"there is no motion to change yet ({piece.text!r}); ask for a motion first")
            elif piece.role == "react" and context.live:
                steps.append(Step(id=new_id(), kind="react", text=text, inputs=[LIVE], seconds=piece.seconds))
                said.append(_say(text, piece.seconds))
            else:
                steps.append(Step(id=new_id(), kind="generate", text=text, seconds=piece.seconds))
                said.append(_say(text, piece.seconds))
        motions = [s.id for s in steps if s.makes_motion]
        if len(motions) >= 2:
            steps.append(Step(id=new_id(), kind="compose", inputs=motions))
        reply = f"On it: {', then '.join(said)}." if said else ""
        if asked:
            looks = any(s.inputs for s in steps if s.kind in {"caption", "reason"})
            reply = (reply + " " if reply else "") + ("Let me look." if looks else "Let me think.")
        return steps, reply


def _say(text: str, seconds: float | None) -> str:
    words = _second_person(text)
    return f"{words} for {seconds:g} s" if seconds else words


def _fit(pieces: list[_Piece]) -> list[_Piece]:
    """At most MAX_STEPS steps (with the compose): the last generate pieces are joined into one."""

    def count(ps: list[_Piece]) -> int:
        motion = sum(p.role in {"generate", "react", "edit"} for p in ps)
        return len(ps) + (1 if motion >= 2 else 0)

    pieces = list(pieces)
    while count(pieces) > MAX_STEPS:
        for i in range(len(pieces) - 1, 0, -1):
            a, b = pieces[i - 1], pieces[i]
            if a.role == b.role == "generate":
                seconds = min((a.seconds or 0) + (b.seconds or 0), MAX_SECONDS) or None
                pieces[i - 1 : i + 1] = [replace(a, text=f"{a.text}, then {b.text}", seconds=seconds)]
                break
        else:
            raise PlanError(f"the request has more parts than a plan may hold ({MAX_STEPS} steps)")
    return pieces
