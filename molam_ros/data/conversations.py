"""Multi-turn conversations about dataset clips: the instruction-tuning data of LLM stage 3.

It is over 500 lines because the format (the spec below, its parser with line-numbered errors) and
the builders of the six tasks' turns from the generator's meta must change together.

A conversation is a list of turns, each one task of the motion-language model (text-to-motion,
motion-to-text, reaction, prediction, editing, reasoning) with its inputs and its answer. Motion is
never stored here: a turn names frames of a dataset clip (`MotionRef`) and the training code
(`molam_ros.llm.examples.conversation_turns`) looks up the clip's cached RQ-VAE codes, so one
conversation file serves any tokenizer, and a file stays small and readable.

File format: JSON Lines, one conversation per line (blank lines are skipped), so that data built
elsewhere (Inter-MT2-style conversations over InterHuman clips, say) can be brought in:

    {"id": "conv_0001", "turns": [
      {"task": "text_to_motion", "text": "two people shake hands",
       "answer": {"clip": "000123", "start": 0, "end": 150, "persons": ["a", "b"]}},
      {"task": "editing", "text": "make it more hesitant", "answer": {"clip": "000123_hesitant"}},
      {"task": "reasoning", "text": "What happens before the handshake?",
       "answer": "Person A walks in before the handshake."}]}

(shown wrapped; in the file it is one line). Keys, all others being an error:

- conversation: `id` (unique in the file), `turns` (at least one; every turn has an answer).
- turn: `task`; `text` (the caption, instruction or question); `motion` (the input motion);
  `answer` (a string for motion_to_text and reasoning, a motion for the others). Which of text and
  motion a task takes:

      task            text       motion    answer
      text_to_motion  required   -         motion
      motion_to_text  -          context   text
      reaction        optional   required  motion
      prediction      -          context   motion
      editing         required   context   motion
      reasoning       required   context   text

  "context": may be left out, and then means the conversation's last motion (the last input or
  motion answer), as in "now make it slower".
- motion: `clip` (a dataset clip id); `start`, `end`: frames [start, end) at 30 fps (default: the
  whole clip); `persons`: ["a", "b"] (default), ["a"] or ["b"], "a" being the clip's first person.
  A reaction gives ONE person as `motion` (the partner) and answers with the other person over the
  same frames of the same clip.

Frame ranges are rounded to token steps by the consumer (a step of l frames belongs where its
frames start), so ranges that start at multiples of 8 frames cut cleanly for l = 2, 4 or 8.

`build_conversations` makes such conversations from the shipped generator's clips (captions, meta
segments and roles, and the edit variants of `edit_variants.py`); `molam data conversations` writes
them to a file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from molam_ros.data.errors import DatasetFormatError
from molam_ros.data.synth import STYLES

PERSONS = ("a", "b")
_PERSON_SETS = (("a",), ("b",), ("a", "b"))


class _TaskSpec(NamedTuple):
    text: str  # "required" | "optional" | "none"
    motion: str  # "required" | "context" | "none"
    answer: str  # "text" | "motion"


# Mirrors molam_ros.llm.prompts._SPECS (a test keeps the two equal): the data layer does not import
# the LLM layer, which pulls in torch and transformers.
TASKS: dict[str, _TaskSpec] = {
    "text_to_motion": _TaskSpec("required", "none", "motion"),
    "motion_to_text": _TaskSpec("none", "context", "text"),
    "reaction": _TaskSpec("optional", "required", "motion"),
    "prediction": _TaskSpec("none", "context", "motion"),
    "editing": _TaskSpec("required", "context", "motion"),
    "reasoning": _TaskSpec("required", "context", "text"),
}


class ConversationFormatError(DatasetFormatError):
    """A line of a conversation file that cannot be read; `line` is its 1-based number."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        super().__init__(path, problem)
        self.line = line
        self.args = (f"{self.path}:{line}: {problem}",)


# ---------------------------------------------------------------------------------------------
# data classes


@dataclass(frozen=True)
class MotionRef:
    """Frames [start, end) of a dataset clip (end None: to its end), of the people in `persons`."""

    clip: str
    start: int = 0
    end: int | None = None
    persons: tuple[str, ...] = PERSONS

    def __post_init__(self) -> None:
        if not isinstance(self.clip, str) or not self.clip.strip():
            raise ValueError(f"clip must be a non-empty clip id, got {self.clip!r}")
        if not _is_int(self.start) or self.start < 0:
            raise ValueError(f"start must be an integer frame >= 0, got {self.start!r}")
        if self.end is not None and (not _is_int(self.end) or self.end <= self.start):
            raise ValueError(f"end must be null or an integer frame > start ({self.start}), got {self.end!r}")
        persons = tuple(self.persons) if isinstance(self.persons, list | tuple) else self.persons
        if persons not in _PERSON_SETS:
            raise ValueError(
                f"persons must be one of {[list(p) for p in _PERSON_SETS]}, got {self.persons!r}"
            )
        object.__setattr__(self, "persons", persons)


@dataclass(frozen=True)
class ConversationTurn:
    """One task of a conversation: its text and motion inputs, and its answer (see the module docstring).

    A turn whose task takes "context" motion may leave `motion` out: it then refers to the
    conversation's last motion. `answer` is None only for a turn still to be generated.
    """

    task: str
    text: str | None = None
    motion: MotionRef | None = None
    answer: str | MotionRef | None = None

    def __post_init__(self) -> None:
        spec = TASKS.get(self.task) if isinstance(self.task, str) else None
        if spec is None:
            raise ValueError(f"unknown task {self.task!r}; known tasks: {list(TASKS)}")
        object.__setattr__(self, "task", str(self.task))  # a prompts.Task (a StrEnum) as its value
        if self.text is not None and (not isinstance(self.text, str) or not self.text.strip()):
            raise ValueError(f"{self.task}: text must be a non-empty string, got {self.text!r}")
        if spec.text == "required" and self.text is None:
            raise ValueError(f"{self.task} needs text")
        if spec.text == "none" and self.text is not None:
            raise ValueError(f"{self.task} takes no text")
        if self.motion is not None and not isinstance(self.motion, MotionRef):
            raise ValueError(f"{self.task}: motion must be a MotionRef, got {type(self.motion).__name__}")
        if spec.motion == "required" and self.motion is None:
            raise ValueError(f"{self.task} needs motion")
        if spec.motion == "none" and self.motion is not None:
            raise ValueError(f"{self.task} takes no input motion")
        self._check_answer(spec)
        if self.task == "reaction":
            self._check_reaction()

    def _check_answer(self, spec: _TaskSpec) -> None:
        if self.answer is None:
            return
        if spec.answer == "text" and (not isinstance(self.answer, str) or not self.answer.strip()):
            raise ValueError(f"{self.task} answers with a non-empty string, got {self.answer!r}")
        if spec.answer == "motion" and not isinstance(self.answer, MotionRef):
            raise ValueError(f"{self.task} answers with a motion, got {self.answer!r}")

    def _check_reaction(self) -> None:
        """The partner is one person; the answer is the other person over the same frames."""
        given = self.motion
        if given.persons == PERSONS:
            raise ValueError('reaction: motion is the partner alone, persons ["a"] or ["b"]')
        answer = self.answer
        if answer is None:
            return
        other = ("b",) if given.persons == ("a",) else ("a",)
        if answer.persons != other:
            raise ValueError(f"reaction: the answer is the other person, persons {list(other)}")
        if (answer.clip, answer.start, answer.end) != (given.clip, given.start, given.end):
            raise ValueError("reaction: the answer must be the same clip and frames as the given motion")


@dataclass(frozen=True)
class Conversation:
    """A training conversation: an id and its turns, every one answered."""

    id: str
    turns: tuple[ConversationTurn, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"a conversation id must be a non-empty string, got {self.id!r}")
        turns = tuple(self.turns)
        object.__setattr__(self, "turns", turns)
        if not turns:
            raise ValueError(f"conversation {self.id!r} has no turns")
        has_motion = False
        for i, t in enumerate(turns, 1):
            if not isinstance(t, ConversationTurn):
                raise ValueError(f"turn {i} is a {type(t).__name__}, not a ConversationTurn")
            if t.answer is None:
                raise ValueError(f"turn {i} ({t.task}) has no answer")
            if t.motion is None and TASKS[t.task].motion == "context" and not has_motion:
                raise ValueError(f"turn {i} ({t.task}) leaves out its motion, but no earlier turn has one")
            has_motion = has_motion or t.motion is not None or isinstance(t.answer, MotionRef)

    def refs(self) -> list[tuple[int, str, MotionRef]]:
        """(turn number from 1, "motion" | "answer", ref) of every motion the conversation names."""
        out = []
        for i, t in enumerate(self.turns, 1):
            for where, ref in (("motion", t.motion), ("answer", t.answer)):
                if isinstance(ref, MotionRef):
                    out.append((i, where, ref))
        return out


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# dicts and JSON Lines

_CONVERSATION_KEYS = ("id", "turns")
_TURN_KEYS = ("task", "text", "motion", "answer")
_REF_KEYS = ("clip", "start", "end", "persons")


def _check_keys(d: Any, allowed: Sequence[str], required: Sequence[str], what: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ValueError(f"{what}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"{what}: missing {missing[0]!r}")


def ref_to_dict(ref: MotionRef) -> dict[str, Any]:
    """A MotionRef as JSON, defaults left out (a whole two-person clip is just {"clip": id})."""
    d: dict[str, Any] = {"clip": ref.clip}
    if ref.start:
        d["start"] = int(ref.start)
    if ref.end is not None:
        d["end"] = int(ref.end)
    if ref.persons != PERSONS:
        d["persons"] = list(ref.persons)
    return d


def ref_from_dict(d: Any, what: str = "motion") -> MotionRef:
    _check_keys(d, _REF_KEYS, ("clip",), what)
    try:
        return MotionRef(d["clip"], d.get("start", 0), d.get("end"), d.get("persons", PERSONS))
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def conversation_to_dict(conv: Conversation) -> dict[str, Any]:
    """The JSON object of one line of a conversation file."""
    turns = []
    for t in conv.turns:
        d: dict[str, Any] = {"task": t.task}
        if t.text is not None:
            d["text"] = t.text
        if t.motion is not None:
            d["motion"] = ref_to_dict(t.motion)
        if t.answer is not None:
            d["answer"] = t.answer if isinstance(t.answer, str) else ref_to_dict(t.answer)
        turns.append(d)
    return {"id": conv.id, "turns": turns}


def conversation_from_dict(d: Any) -> Conversation:
    """A Conversation from its JSON object; ValueError saying which turn and field is wrong."""
    _check_keys(d, _CONVERSATION_KEYS, _CONVERSATION_KEYS, "conversation")
    if not isinstance(d["turns"], list):
        raise ValueError(f"turns must be a list, got {type(d['turns']).__name__}")
    turns = [_turn_from_dict(t, f"turn {i}") for i, t in enumerate(d["turns"], 1)]
    return Conversation(d["id"], tuple(turns))


def _turn_from_dict(d: Any, where: str) -> ConversationTurn:
    _check_keys(d, _TURN_KEYS, ("task", "answer"), where)
    motion = ref_from_dict(d["motion"], f"{where} motion") if "motion" in d else None
    answer = d["answer"]
    if isinstance(answer, dict):
        answer = ref_from_dict(answer, f"{where} answer")
    try:
        return ConversationTurn(d["task"], d.get("text"), motion, answer)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def load_conversations(path: str | Path) -> list[Conversation]:
    """Every conversation of a JSON Lines file; the first bad line raises `ConversationFormatError`
    naming the file, the line and what is wrong (a long training run should not start on bad data)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, "missing conversation file")
    convs: list[Conversation] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConversationFormatError(path, n, f"not valid JSON ({e})") from None
            try:
                conv = conversation_from_dict(d)
            except ValueError as e:
                raise ConversationFormatError(path, n, str(e)) from None
            if conv.id in first_line:
                raise ConversationFormatError(
                    path, n, f"duplicate conversation id {conv.id!r} (first on line {first_line[conv.id]})"
                )
            first_line[conv.id] = n
            convs.append(conv)
    return convs


def save_conversations(convs: Iterable[Conversation], path: str | Path) -> int:
    """Write conversations as JSON Lines (replacing the file at once); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for conv in convs:
            f.write(json.dumps(conversation_to_dict(conv), ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def check_refs(convs: Iterable[Conversation], dataset: Any, split: str | None = None) -> list[str]:
    """Problems of the conversations' motion refs against a `MotionDataset`, one line each.

    Reports clips that are not in the dataset (or not in `split`: a test clip in training
    conversations leaks), frame ranges past a clip's end, person b of a one-person clip, and
    reactions whose given partner is person b of a clip whose `meta["actor"]` is not 1 (the codes
    cache holds the people swapped only for those clips, see `molam_ros.llm.examples`).
    """
    known = set(dataset.ids(split))
    everywhere = known if split is None else set(dataset.ids())
    clips: dict[str, Any] = {}
    problems = []
    for conv in convs:
        for i, where, ref in conv.refs():
            at = f"{conv.id} turn {i} {where}"
            if ref.clip not in known:
                where_else = f"not in split {split!r}" if ref.clip in everywhere else "not in the dataset"
                problems.append(f"{at}: clip {ref.clip!r} is {where_else}")
                continue
            if ref.clip not in clips:
                clips[ref.clip] = dataset.load(ref.clip)
            clip = clips[ref.clip]
            if ref.start >= clip.num_frames or (ref.end is not None and ref.end > clip.num_frames):
                span = f"frames [{ref.start}, {ref.end})"
                problems.append(f"{at}: {span} outside clip {ref.clip!r} ({clip.num_frames} frames)")
            if "b" in ref.persons and clip.num_people < 2:
                problems.append(f"{at}: clip {ref.clip!r} has one person, there is no person b")
            task = conv.turns[i - 1].task
            swapped = task == "reaction" and where == "motion" and ref.persons == ("b",)
            if swapped and clip.meta.get("actor") != 1:
                problems.append(f"{at}: a reaction to person b needs a clip whose meta actor is 1")
    return problems


def task_counts(convs: Iterable[Conversation]) -> dict[str, int]:
    """Turns per task over the conversations (for summaries), in TASKS order."""
    counts = Counter(t.task for c in convs for t in c.turns)
    return {task: counts[task] for task in TASKS if counts[task]}


# ---------------------------------------------------------------------------------------------
# reasoning questions from generator meta

# Solo actions of the generator's meta as (one person does it, both people do it).
_ACTIONS = {
    "idle": ("stands idle", "stand idle"),
    "look_around": ("looks around", "look around"),
    "step_back": ("steps back", "step back"),
    "walk_in": ("walks in", "walk in"),
    "walk_away": ("walks away", "walk away"),
    "turn_to_face": ("turns to face the other person", "turn to face each other"),
    # the solo actions of synth.SOLO_ACTIONS (SynthConfig.solo_actions)
    "crouch": ("crouches down and gets back up", "crouch down and get back up"),
    "pick_up": (
        "bends down to pick a thing up from the floor",
        "bend down to pick a thing up from the floor",
    ),
    "reach_up": ("reaches up high", "reach up high"),
    "reach_side": ("reaches out to the side", "reach out to the side"),
    "reach_forward": ("reaches forward", "reach forward"),
    "turn_around": ("turns around on the spot", "turn around on the spot"),
    "side_step": ("steps to the side", "step to the side"),
    "shadow_box": ("shadow-boxes, jabbing at the air", "shadow-box, jabbing at the air"),
    "gesture": ("makes a few brisk hand gestures", "make a few brisk hand gestures"),
}


def _who(person: Any) -> str:
    return {0: "person A", 1: "person B", "both": "both people"}.get(person, "someone")


def _does(person: Any, action: str) -> str:
    """The start of a sentence about a solo segment ("Person A walks in", "Both people stand idle")."""
    forms = _ACTIONS.get(action)
    verb = action.replace("_", " ") if forms is None else forms[person == "both"]
    who = _who(person)
    return f"{who[:1].upper()}{who[1:]} {verb}"


def reasoning_pairs(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(question, answer) pairs about what comes before/after the interaction and why, from meta."""
    segs = meta.get("segments") or []
    inter = _interaction_segment(meta)
    if inter is None:
        return []
    name = str(inter.get("interaction", meta.get("interaction", "interaction"))).replace("_", " ")
    out = []
    for seg, when in ((segs[0], "before"), (segs[-1], "after")):
        if seg is not inter and seg.get("kind") == "solo":
            out.append(
                (
                    f"What happens {when} the {name}?",
                    f"{_does(seg.get('person'), str(seg.get('action')))} {when} the {name}.",
                )
            )
    actor = meta.get("actor")
    if actor in (0, 1) and meta.get("description"):
        reactor = _who(1 - actor)
        out.append((f"Why does {reactor} move?", f"Because {_who(actor)} starts it: {meta['description']}."))
    return out


def _interaction_segment(meta: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in meta.get("segments") or [] if s.get("kind") == "interaction"), None)


# ---------------------------------------------------------------------------------------------
# building conversations from the generator's clips

PREDICTION_GRID = 8  # frames; prediction cuts land on multiples of it (whole steps for l = 2, 4, 8)
_MIN_PART = 2 * PREDICTION_GRID  # frames on each side of a prediction cut


@dataclass(frozen=True)
class _Clip:
    id: str
    meta: dict[str, Any]
    texts: tuple[str, ...]
    frames: int


class _Builder:
    """Turn makers over one split's clips. `shown` is what "that motion" means at this point of the
    conversation being built: (clip id, "whole" | "segment"), or None when a turn may not refer to
    it (a part of a clip, or a reaction with the people swapped, about which captions are wrong)."""

    def __init__(self, clips: dict[str, _Clip], rng: np.random.Generator) -> None:
        self.clips, self.rng = clips, rng
        self.captioned = sorted(i for i, c in clips.items() if c.texts)
        groups: dict[str, list[str]] = {}
        for i, c in sorted(clips.items()):
            groups.setdefault(str(c.meta.get("edit_of", i)), []).append(i)
        self.group = {i: members for members in groups.values() for i in members}
        self.start()

    def start(self) -> None:
        self.shown: tuple[str, str] | None = None
        self.asked: set[str] = set()

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    # what a clip allows

    def partners(self, clip_id: str) -> list[str]:
        """Clips that are the same scene as `clip_id` in another style (edit targets)."""
        style = self.clips[clip_id].meta.get("style")
        return [i for i in self.group[clip_id] if self.clips[i].meta.get("style") not in (None, style)]

    def other_captioned(self, clip_id: str) -> str | None:
        others = [i for i in self.captioned if i != clip_id]
        return self.pick(others) if others else None

    def can_react(self, clip_id: str) -> bool:
        return self.clips[clip_id].meta.get("actor") in (0, 1)

    def can_predict(self, clip_id: str) -> bool:
        return self.clips[clip_id].frames >= 2 * _MIN_PART + PREDICTION_GRID

    def questions(self, clip_id: str) -> list[tuple[str, str]]:
        return [qa for qa in reasoning_pairs(self.clips[clip_id].meta) if qa[0] not in self.asked]

    # turn makers; each updates `shown`

    def _ref_or_context(self, clip_id: str, kinds: tuple[str, ...] = ("whole",)) -> MotionRef | None:
        """None (refer to the last motion) when it is this clip, mostly; else the whole clip."""
        if self.shown is not None and self.shown[0] == clip_id and self.shown[1] in kinds and self.coin(0.8):
            return None
        return MotionRef(clip_id)

    def text_to_motion(self, clip_id: str) -> ConversationTurn:
        self.shown = (clip_id, "whole")
        text = self.pick(self.clips[clip_id].texts)
        return ConversationTurn("text_to_motion", text=text, answer=MotionRef(clip_id))

    def motion_to_text(self, clip_id: str) -> ConversationTurn:
        motion = self._ref_or_context(clip_id)
        self.shown = (clip_id, "whole")
        return ConversationTurn("motion_to_text", motion=motion, answer=self.pick(self.clips[clip_id].texts))

    def editing(self, source: str, target: str) -> ConversationTurn:
        motion = self._ref_or_context(source)
        self.shown = (target, "whole")
        text = _edit_instruction(self.clips[target].meta, self.pick)
        return ConversationTurn("editing", text=text, motion=motion, answer=MotionRef(target))

    def reasoning(self, clip_id: str) -> ConversationTurn | None:
        qas = self.questions(clip_id)
        if not qas:
            return None
        q, a = self.pick(qas)
        self.asked.add(q)
        motion = self._ref_or_context(clip_id, ("whole", "segment"))
        if motion is not None:  # shown: the interaction alone, so before/after must be inferred
            seg = _interaction_segment(self.clips[clip_id].meta)
            motion = MotionRef(clip_id, int(seg["start"]), int(seg["end"]))
            self.shown = (clip_id, "segment")
        return ConversationTurn("reasoning", text=q, motion=motion, answer=a)

    def reaction(self, clip_id: str) -> ConversationTurn:
        meta = self.clips[clip_id].meta
        actor = int(meta["actor"])
        given, other = PERSONS[actor], PERSONS[1 - actor]
        # In the span the actor is person a: the clip as stored when the actor is its first person.
        self.shown = (clip_id, "whole") if actor == 0 else None
        text = _reaction_instruction(meta, self.pick) if self.coin(0.4) else None
        given_ref, answer_ref = MotionRef(clip_id, persons=(given,)), MotionRef(clip_id, persons=(other,))
        return ConversationTurn("reaction", text=text, motion=given_ref, answer=answer_ref)

    def prediction(self, clip_id: str) -> ConversationTurn:
        frames = self.clips[clip_id].frames
        lo, hi = _MIN_PART // PREDICTION_GRID, (frames - _MIN_PART) // PREDICTION_GRID
        cut = PREDICTION_GRID * int(self.rng.integers(lo, hi + 1))
        self.shown = None
        return ConversationTurn(
            "prediction", motion=MotionRef(clip_id, 0, cut), answer=MotionRef(clip_id, cut)
        )


def _edit_instruction(meta: dict[str, Any], pick: Callable) -> str:
    """An instruction naming the target's style ("make it hesitant", "do it more playfully")."""
    style = str(meta["style"])
    s = STYLES.get(style)
    if s is None:
        return f"make it {style}"
    return pick(
        (f"make it {style}", f"do it more {pick(s.adverbs)}", f"now do it {pick(s.manners)}",
         f"let them be more {style}", f"again, but {pick(s.adverbs)}")
    )  # fmt: skip


def _reaction_instruction(meta: dict[str, Any], pick: Callable) -> str:
    style = str(meta.get("style", ""))
    s = STYLES.get(style)
    if s is None:
        return "React to them."
    return pick((f"Respond {pick(s.manners)}.", f"Be {style}.", f"React {pick(s.adverbs)}."))


# Recipes: each makes the turns of one conversation about a subject clip, or fewer than two turns
# when the clip does not allow it. Turn makers that do not apply are skipped.


def _story(b: _Builder, x: str) -> list[ConversationTurn | None]:
    """Describe or generate a scene, restyle it, then talk about the result."""
    y = b.pick(b.partners(x))
    turns = [b.text_to_motion(x) if b.coin() else b.motion_to_text(x), b.editing(x, y)]
    for _ in range(int(b.rng.integers(0, 3))):
        more = b.partners(y)
        choice = b.pick(("describe", "reason", "edit") if more else ("describe", "reason"))
        if choice == "edit":
            z = b.pick(more)
            turns.append(b.editing(y, z))
            y = z
        else:
            turns.append(b.motion_to_text(y) if choice == "describe" else b.reasoning(y))
    return turns


def _describe_then_generate(b: _Builder, x: str) -> list[ConversationTurn | None]:
    """Caption one clip, generate another from its caption, then edit it or reason about it."""
    y = b.other_captioned(x)
    if y is None:
        return []
    turns = [b.motion_to_text(x), b.text_to_motion(y)]
    if b.partners(y) and b.coin(0.7):
        turns.append(b.editing(y, b.pick(b.partners(y))))
    elif b.coin(0.5):
        turns.append(b.reasoning(y))
    return turns


def _reactions(b: _Builder, x: str) -> list[ConversationTurn | None]:
    """React as the reactor, then answer about the scene or react to another one."""
    turns = [b.reaction(x)]
    for _ in range(int(b.rng.integers(1, 3))):
        choice = b.pick(("describe", "reason", "react"))
        if choice == "react":
            others = [i for i in b.clips if i != x and b.can_react(i)]
            y = b.pick(others) if others else x
            turns.append(b.reaction(y))
        else:
            turns.append(b.motion_to_text(x) if choice == "describe" and b.clips[x].texts else b.reasoning(x))
    return turns


def _prediction(b: _Builder, x: str) -> list[ConversationTurn | None]:
    """Continue the start of a scene, then describe or reason about the whole of it."""
    turns = [b.prediction(x)]
    if b.clips[x].texts and b.coin(0.6):
        turns.append(b.motion_to_text(x))
    turns.append(b.reasoning(x))
    if b.coin(0.3):
        turns.append(b.reasoning(x))
    return turns


def _reasoning(b: _Builder, x: str) -> list[ConversationTurn | None]:
    """Several questions about one interaction, and maybe a caption of the whole clip."""
    turns = [b.reasoning(x), b.reasoning(x)]
    if b.clips[x].texts and b.coin(0.5):
        turns.append(b.motion_to_text(x))
    return turns


def _recipes(b: _Builder, x: str) -> list[tuple[Callable[[_Builder, str], list], float]]:
    """The recipes that apply to clip x, with weights (edit stories are rarer, so favoured)."""
    c = b.clips[x]
    out: list[tuple[Callable[[_Builder, str], list], float]] = []
    if c.texts and b.partners(x):
        out.append((_story, 4.0))
    if c.texts and len(b.captioned) > 1:
        out.append((_describe_then_generate, 1.0))
    if b.can_react(x):
        out.append((_reactions, 1.5))
    if b.can_predict(x):
        out.append((_prediction, 1.0))
    if len(reasoning_pairs(c.meta)) >= 2:
        out.append((_reasoning, 1.0))
    return out


def _conversation(b: _Builder, x: str, conv_id: str) -> Conversation | None:
    recipes = _recipes(b, x)
    if not recipes:
        return None
    weights = np.array([w for _, w in recipes])
    recipe = recipes[int(b.rng.choice(len(recipes), p=weights / weights.sum()))][0]
    b.start()
    turns = [t for t in recipe(b, x) if t is not None][:4]
    return Conversation(conv_id, tuple(turns)) if len(turns) >= 2 else None


def _load_clips(dataset: Any, split: str) -> dict[str, _Clip]:
    """The split's two-person clips (conversations are about interactions)."""
    out = {}
    for clip_id in dataset.ids(split):
        clip = dataset.load(clip_id)
        if clip.num_people == 2:
            out[clip_id] = _Clip(clip_id, clip.meta, tuple(clip.texts), clip.num_frames)
    return out


def build_conversations(
    dataset: Any, split: str, rng: np.random.Generator, count: int | None = None
) -> list[Conversation]:
    """Multi-turn (2-4 turn) conversations over the two-person clips of one split of a `MotionDataset`.

    Each conversation is about a subject clip, taken in a shuffled order (again and again when
    `count` is more than the clips): a story (caption or generate it, restyle it with its edit
    variants, describe or question the result), describe-then-generate, reactions (the actor given,
    the reactor answers), prediction, or reasoning about what comes before and after the
    interaction. Every ref stays inside `split`. `count` None: one conversation per clip.
    Deterministic by `rng`.
    """
    clips = _load_clips(dataset, split)
    b = _Builder(clips, rng)
    want = len(clips) if count is None else count
    out: list[Conversation] = []
    while len(out) < want:
        made = 0
        for x in rng.permutation(sorted(clips)):
            if len(out) >= want:
                break
            conv = _conversation(b, str(x), f"{split}_{len(out):06d}")
            if conv is not None:
                out.append(conv)
                made += 1
        if made == 0:  # nothing in this split makes a conversation
            break
    return out
