"""Prompt templates of every task, written once and used for both training and inference.

A conversation is a list of `Turn`s (a task, its inputs, its answer); it is rendered with the
backbone's own chat template (`tokenizer.apply_chat_template`) after a fixed system message, with
motion written as the span token strings of `MotionVocab.codes_to_text`. The tasks (MoLaM/VIM):

- text-to-motion: a caption in, a two-person span out;
- motion-to-text: a span in, a caption out;
- reaction: an optional instruction in; the answer is ONE interleaved two-person span in which person
  a's tokens are given (the partner, masked out of the loss) and person b's are generated. This is the
  streaming layout (docs/architecture.md: every l frames person a's codes are appended and person
  b's next D codes generated), so offline reaction generation (`MotionSpanConstraint(forced=...)`)
  and the streaming reaction are the same computation on the same training data;
- prediction: the start of a motion in, its continuation (a new span) out;
- editing: a source motion and an instruction in, the edited motion out;
- reasoning: a motion and a question (what came before/after, why) in, a text answer out;
- conversation: any mix of these over several turns. Inside a conversation a turn may leave out its
  input motion and refer to the last motion of the conversation ("now make it slower").

Token ids are built piece by piece (the text before each answer, each answer, each end of turn),
each piece tokenized on its own and concatenated, rather than tokenizing the whole rendered text.
That way the ids of a training example up to an answer are exactly the ids `build_prompt` produces
for the same conversation at inference, whatever the tokenizer does at piece boundaries.

Why one module of a little over 500 lines: the task specs, the phrasings and the piece-by-piece
encoding are one contract between training and inference (an example and its prompt must come from
the same code); split, a change to one part could silently break the identity the other relies on.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molam_ros.llm.vocab import MOTION_TOKEN_RE, PERSONS, MotionVocab

IGNORE_INDEX = -100  # label of tokens without loss (torch's cross_entropy ignore_index)

# No motion token strings in here: they would become motion tokens in every prompt.
DEFAULT_SYSTEM = (
    "You are MoLaM, a model that reads and writes human motion and text. Motion is written as spans "
    "of discrete motion tokens, time step by time step: person A's codes, then person B's codes."
)


class Task(str, enum.Enum):
    # What enum.StrEnum is, spelled for Python 3.10 (ROS 2 Humble's): str() and format() give the value.
    __str__ = str.__str__
    __format__ = str.__format__

    TEXT_TO_MOTION = "text_to_motion"
    MOTION_TO_TEXT = "motion_to_text"
    REACTION = "reaction"
    PREDICTION = "prediction"
    EDITING = "editing"
    REASONING = "reasoning"
    CONVERSATION = "conversation"

    @classmethod
    def parse(cls, task: Task | str) -> Task:
        """`task` as a Task, with an error that lists the known tasks."""
        try:
            return cls(task)
        except ValueError:
            raise ValueError(f"unknown task {task!r}; known tasks: {[t.value for t in cls]}") from None


@dataclass(frozen=True)
class MotionCodes:
    """One or two people's RQ-VAE codes, (L, D) integer arrays (either may be None, not both)."""

    a: Any = None
    b: Any = None

    def __post_init__(self) -> None:
        if self.a is None and self.b is None:
            raise ValueError("MotionCodes needs codes for person a, person b or both")

    @property
    def persons(self) -> tuple[str, ...]:
        return tuple(p for p, c in zip(PERSONS, (self.a, self.b), strict=True) if c is not None)

    @property
    def steps(self) -> int:
        return int(np.shape(self.a if self.a is not None else self.b)[0])


# For each task: whether `text` and `motion` are inputs ("required", "optional", "none"), and whether
# the answer is text or motion. A task's input motion may be omitted inside a conversation
# ("context"): it then refers to the last motion of the conversation.
@dataclass(frozen=True)
class _Spec:
    text: str
    motion: str
    answer: str  # "text" | "motion"
    text_name: str = "text"


_SPECS: dict[Task, _Spec] = {
    Task.TEXT_TO_MOTION: _Spec(text="required", motion="none", answer="motion", text_name="caption"),
    Task.MOTION_TO_TEXT: _Spec(text="none", motion="context", answer="text"),
    Task.REACTION: _Spec(text="optional", motion="required", answer="motion", text_name="instruction"),
    Task.PREDICTION: _Spec(text="none", motion="context", answer="motion"),
    Task.EDITING: _Spec(text="required", motion="context", answer="motion", text_name="instruction"),
    Task.REASONING: _Spec(text="required", motion="context", answer="text", text_name="question"),
}

# The user message of each task. Several phrasings per task let training see varied requests
# (`rng`); inference uses the first. Keys: "inline" when the motion is in this turn, "ref" when the
# turn refers to the conversation's last motion, and the same with "+text" for optional text.
TEMPLATES: dict[Task, dict[str, tuple[str, ...]]] = {
    Task.TEXT_TO_MOTION: {
        "none": (
            "Generate the motion of two people: {text}",
            "Show me this interaction: {text}",
            "Animate two people. {text}",
        ),
    },
    Task.MOTION_TO_TEXT: {
        "inline": (
            "Describe what the people do.\n{motion}",
            "{motion}\nWhat is happening in this motion?",
            "Caption this interaction.\n{motion}",
        ),
        "ref": ("Describe what the people do in that motion.", "What is happening in it?"),
    },
    Task.REACTION: {
        # Person a's motion is not in the message: it arrives step by step inside the answer span.
        "inline": (
            "Person A's motion arrives step by step. Generate person B's reaction.",
            "React to person A as person B.",
        ),
        "inline+text": (
            "Person A's motion arrives step by step. Generate person B's reaction. {text}",
            "React to person A as person B. {text}",
        ),
    },
    Task.PREDICTION: {
        "inline": (
            "Here is the start of an interaction:\n{motion}\nContinue it.",
            "{motion}\nWhat happens next? Continue the motion.",
        ),
        "ref": ("Continue that motion.", "What happens next? Continue it."),
    },
    Task.EDITING: {
        "inline": ("{motion}\nEdit this motion: {text}", "Change this interaction: {text}\n{motion}"),
        "ref": ("Edit that motion: {text}", "Now change it: {text}"),
    },
    Task.REASONING: {
        "inline": ("{motion}\n{text}", "Look at this interaction.\n{motion}\n{text}"),
        "ref": ("{text}",),
    },
}


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One request and its answer (None when it is to be generated: the last turn of a prompt).

    `text` is the task's text input (caption, instruction or question), `motion` its motion input
    (for reaction: person a's codes, the partner), `answer` a str for text tasks and `MotionCodes`
    for motion tasks (for reaction: person b's codes, as many steps as person a's).
    """

    task: Task
    text: str | None = None
    motion: MotionCodes | None = None
    answer: str | MotionCodes | None = None

    def __post_init__(self) -> None:
        task = Task.parse(self.task)
        object.__setattr__(self, "task", task)
        if task is Task.CONVERSATION:
            raise ValueError("a Turn is one task; a conversation is a list of Turns")
        spec = _SPECS[task]
        if spec.text == "required" and self.text is None:
            raise ValueError(f"task {task.value} needs text (the {spec.text_name})")
        if spec.text == "none" and self.text is not None:
            raise ValueError(f"task {task.value} takes no text")
        if spec.motion == "required" and self.motion is None:
            raise ValueError(f"task {task.value} needs motion")
        if spec.motion == "none" and self.motion is not None:
            raise ValueError(f"task {task.value} takes no input motion")
        if self.motion is not None and not isinstance(self.motion, MotionCodes):
            raise ValueError(f"motion must be MotionCodes, got {type(self.motion).__name__}")
        if task is Task.REACTION and self.motion is not None and self.motion.persons != ("a",):
            raise ValueError(
                "reaction takes person a's codes as motion (MotionCodes(a=...)), person b is generated"
            )
        if self.answer is not None:
            want = str if spec.answer == "text" else MotionCodes
            if not isinstance(self.answer, want):
                raise ValueError(
                    f"task {task.value} answers with {want.__name__}, got {type(self.answer).__name__}"
                )
        if task is Task.REACTION and isinstance(self.answer, MotionCodes):
            if self.answer.persons != ("b",):
                raise ValueError("a reaction's answer is person b's codes (MotionCodes(b=...))")
            if self.answer.steps != self.motion.steps:
                raise ValueError(
                    f"a reaction's answer needs as many steps as person a's motion: "
                    f"{self.answer.steps} != {self.motion.steps}"
                )


@dataclass(frozen=True, kw_only=True)
class PromptConfig:
    """Bounds and choices of prompt building (the bounds keep a bad request from filling the context)."""

    system: str = DEFAULT_SYSTEM
    max_text_chars: int = 1000  # per text field (caption, instruction, question, answer)
    max_tokens: int = 4096  # whole example / prompt; SmolLM2 has 8192 positions
    all_turns_loss: bool = True  # loss on every assistant answer of a conversation, or the last only

    def __post_init__(self) -> None:
        if self.max_text_chars < 1 or self.max_tokens < 1:
            raise ValueError("PromptConfig.max_text_chars and max_tokens must be >= 1")
        if not self.system.strip() or MOTION_TOKEN_RE.search(self.system):
            # Motion token strings would be tokenized as motion tokens and open spans in every prompt.
            raise ValueError("PromptConfig.system must be non-empty text without motion token strings")


@dataclass(frozen=True)
class Example:
    """A tokenized training conversation. `labels` is `input_ids` with IGNORE_INDEX where no loss is
    taken (system and user turns, answer headers, person a's tokens in a reaction);
    `input_ids[:prompt_len]` is what `build_prompt` gives for the last turn."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int

    @property
    def prompt_ids(self) -> list[int]:
        return self.input_ids[: self.prompt_len]

    @property
    def target_ids(self) -> list[int]:
        """The last answer's supervised tokens (the ones a generation should reproduce)."""
        tail = zip(self.input_ids[self.prompt_len :], self.labels[self.prompt_len :], strict=True)
        return [t for t, lab in tail if lab != IGNORE_INDEX]


@dataclass(frozen=True)
class Prompt:
    """Token ids ending with the assistant header, and what the answer must be.

    `answer` "motion" or "text"; for a motion answer, `persons` of the span and `forced` codes
    (reaction: person a's, given), which is what `MotionSpanConstraint` needs.
    """

    input_ids: list[int]
    task: Task
    answer: str
    persons: tuple[str, ...] | None = None
    forced: dict[str, np.ndarray] = field(default_factory=dict)


# helper functions


def _check_text(text: str, what: str, tokenizer: Any, config: PromptConfig) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text) > config.max_text_chars:
        raise ValueError(
            f"{what} has {len(text)} characters, more than "
            f"PromptConfig.max_text_chars={config.max_text_chars}"
        )
    if MOTION_TOKEN_RE.search(text):
        raise ValueError(f"{what} contains motion token strings; pass motion as MotionCodes, not text")
    for special in _control_tokens(tokenizer):
        if special in text:
            raise ValueError(f"{what} contains the control token {special!r}")
    return text


def _control_tokens(tokenizer: Any) -> list[str]:
    """The tokenizer's special / added token strings other than motion tokens.

    Cached on the tokenizer, keyed by its size so that tokens added later are seen.
    """
    cached = getattr(tokenizer, "_molam_control_tokens", None)
    if cached is None or cached[0] != len(tokenizer):
        added = [t for t in tokenizer.get_added_vocab() if not MOTION_TOKEN_RE.fullmatch(t)]
        cached = (len(tokenizer), sorted(set(added) | set(tokenizer.all_special_tokens)))
        tokenizer._molam_control_tokens = cached
    return cached[1]


def _pick(options: Sequence[str], rng: np.random.Generator | None) -> str:
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def _user_message(
    turn: Turn, vocab: MotionVocab, tokenizer: Any, config: PromptConfig, rng: np.random.Generator | None,
    has_context: bool,
) -> str:  # fmt: skip
    spec = _SPECS[turn.task]
    if turn.motion is None and spec.motion == "context":
        if not has_context:
            raise ValueError(
                f"task {turn.task.value} needs motion: give it, or put it after a turn that has motion"
            )
        key = "ref"
    elif turn.task is Task.TEXT_TO_MOTION:
        key = "none"
    else:
        key = "inline"
    if turn.task is Task.REACTION and turn.text is not None:
        key = "inline+text"
    fields: dict[str, str] = {}
    if turn.text is not None:
        fields["text"] = _check_text(turn.text, f"{turn.task.value} {spec.text_name}", tokenizer, config)
    if turn.motion is not None and turn.task is not Task.REACTION:
        fields["motion"] = vocab.codes_to_text(turn.motion.a, turn.motion.b)
    return _pick(TEMPLATES[turn.task][key], rng).format(**fields)


def _answer_span(turn: Turn, vocab: MotionVocab) -> tuple[list[int], list[bool]]:
    """(ids, supervised) of a motion answer's span; in a reaction, person a's tokens are inputs."""
    answer = turn.answer
    assert isinstance(answer, MotionCodes)
    if turn.task is not Task.REACTION:
        ids = vocab.codes_to_token_ids(answer.a, answer.b)
        return ids, [True] * len(ids)
    ids = vocab.codes_to_token_ids(turn.motion.a, answer.b)
    per_person = vocab.depth + int(vocab.step_markers)
    header = 0 if vocab.step_markers else 2
    mask = [True] * len(ids)
    for step in range(answer.steps):
        start = 1 + header + step * 2 * per_person  # person a's part comes first in each step
        mask[start : start + per_person] = [False] * per_person
    return ids, mask


def _prompt_info(turn: Turn) -> Prompt:
    spec = _SPECS[turn.task]
    if spec.answer == "text":
        return Prompt([], turn.task, "text")
    if turn.task is Task.REACTION:
        return Prompt([], turn.task, "motion", ("a", "b"), {"a": np.asarray(turn.motion.a)})
    if turn.task is Task.TEXT_TO_MOTION:
        return Prompt([], turn.task, "motion", ("a", "b"))
    persons = turn.motion.persons if turn.motion is not None else None
    return Prompt([], turn.task, "motion", persons)


class _Renderer:
    """Renders a conversation with the chat template and tokenizes it piece by piece."""

    def __init__(self, tokenizer: Any, messages: list[dict[str, str]]) -> None:
        self.tokenizer = tokenizer
        self.messages = messages

    def text(self, n: int, *, generation_prompt: bool = False) -> str:
        if n == 0:
            return ""
        return self.tokenizer.apply_chat_template(
            self.messages[:n], tokenize=False, add_generation_prompt=generation_prompt
        )

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def delta(self, before: str, after: str) -> str:
        if not after.startswith(before):
            raise ValueError(
                "the tokenizer's chat template does not render a conversation as a prefix of its "
                "continuation; molam_ros needs an append-only template (ChatML, LLaMA, Gemma, ...)"
            )
        return after[len(before) :]


def _conversation(task: Task | str, fields: dict[str, Any]) -> list[Turn]:
    task = Task.parse(task)
    if task is Task.CONVERSATION:
        turns = fields.pop("turns", None)
        if fields:
            raise ValueError(f"a conversation takes only turns=[Turn, ...], got also {sorted(fields)}")
        if not turns or not all(isinstance(t, Turn) for t in turns):
            raise ValueError("a conversation needs turns=[Turn, ...] with at least one Turn")
        return list(turns)
    unknown = set(fields) - {"text", "motion", "answer"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} for task {task.value}; use text, motion, answer")
    return [Turn(task=task, **fields)]


def _encode(
    turns: list[Turn],
    *,
    tokenizer: Any,
    vocab: MotionVocab,
    config: PromptConfig,
    rng: np.random.Generator | None,
    for_training: bool,
) -> tuple[list[int], list[int], int]:
    """(input_ids, labels, prompt_len) of a conversation; without the last answer if not for_training."""
    messages = [{"role": "system", "content": config.system}]
    answers: list[tuple[list[int], list[bool]] | None] = []
    has_context = False
    for i, turn in enumerate(turns):
        last = i == len(turns) - 1
        messages.append(
            {"role": "user", "content": _user_message(turn, vocab, tokenizer, config, rng, has_context)}
        )
        has_context = has_context or turn.motion is not None
        if turn.answer is None:
            if for_training or not last:
                raise ValueError(
                    f"turn {i} ({turn.task.value}) has no answer; only a prompt's last turn may lack one"
                )
            break
        if not for_training and last:
            raise ValueError("the last turn of a prompt is the one to generate: leave its answer None")
        if isinstance(turn.answer, str):
            text = _check_text(turn.answer, f"{turn.task.value} answer", tokenizer, config)
            messages.append({"role": "assistant", "content": text})
            answers.append(None)
        else:
            ids, mask = _answer_span(turn, vocab)
            messages.append({"role": "assistant", "content": vocab.codes_to_text(*_span_codes(turn))})
            answers.append((ids, mask))
            has_context = True

    r = _Renderer(tokenizer, messages)
    eos = tokenizer.eos_token_id
    input_ids: list[int] = []
    labels: list[int] = []
    prompt_len = 0
    prev = ""
    for m, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        head = r.text(m, generation_prompt=True)  # ... <|im_start|>assistant\n
        whole = r.text(m + 1)  # ... answer<|im_end|>\n
        piece = r.ids(r.delta(prev, head))
        input_ids += piece
        labels += [IGNORE_INDEX] * len(piece)
        prompt_len = len(input_ids)
        content, end = _split_answer(r.delta(head, whole), msg["content"])
        a = answers[(m - 2) // 2]
        content_ids = r.ids(content)
        if a is not None:
            if content_ids != a[0]:
                raise ValueError(
                    "the tokenizer splits motion token strings; add them with MotionVocab.add_to"
                )
            supervised = a[1]
        else:
            supervised = [True] * len(content_ids)
        end_ids = r.ids(end)
        # Learn to stop: the end of turn is supervised up to its EOS; what follows (a newline) is not
        # generated at inference, where generation stops at the EOS.
        end_sup = [True] * len(end_ids)
        if eos in end_ids:
            k = end_ids.index(eos)
            end_sup = [j <= k for j in range(len(end_ids))]
        take = config.all_turns_loss or m == len(messages) - 1
        input_ids += content_ids + end_ids
        labels += [
            t if take and s else IGNORE_INDEX
            for t, s in zip(content_ids + end_ids, supervised + end_sup, strict=True)
        ]
        prev = whole
    if not for_training:
        head = r.text(len(messages), generation_prompt=True)
        input_ids += r.ids(r.delta(prev, head))
        prompt_len = len(input_ids)
        labels = [IGNORE_INDEX] * len(input_ids)
    if len(input_ids) > config.max_tokens:
        raise ValueError(
            f"the {'example' if for_training else 'prompt'} has {len(input_ids)} tokens, more than "
            f"PromptConfig.max_tokens={config.max_tokens}; shorten the motion or the conversation"
        )
    return input_ids, labels, prompt_len


def _span_codes(turn: Turn) -> tuple[Any, Any]:
    answer = turn.answer
    assert isinstance(answer, MotionCodes)
    if turn.task is Task.REACTION:
        return turn.motion.a, answer.b
    return answer.a, answer.b


def _split_answer(rendered: str, content: str) -> tuple[str, str]:
    """Split a rendered answer into its content and the template's end of turn."""
    at = rendered.find(content)
    if at != 0:
        raise ValueError("the chat template changes the assistant's content; molam_ros needs it verbatim")
    return content, rendered[len(content) :]


# public API


def build_example(
    task: Task | str,
    *,
    tokenizer: Any,
    vocab: MotionVocab,
    config: PromptConfig | None = None,
    rng: np.random.Generator | None = None,
    **fields: Any,
) -> Example:
    """A training example: a task with its inputs and answer (or `turns=[...]` for a conversation).

        build_example(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=v, text="two people hug",
                      answer=MotionCodes(a=codes_a, b=codes_b))

    `rng` picks one of the task's phrasings (None: the first, as at inference). The loss covers only
    the assistant answers (see `Example`).
    """
    config = config or PromptConfig()
    turns = _conversation(task, dict(fields))
    input_ids, labels, prompt_len = _encode(
        turns, tokenizer=tokenizer, vocab=vocab, config=config, rng=rng, for_training=True
    )
    return Example(input_ids=input_ids, labels=labels, prompt_len=prompt_len)


def build_prompt(
    task: Task | str,
    *,
    tokenizer: Any,
    vocab: MotionVocab,
    config: PromptConfig | None = None,
    rng: np.random.Generator | None = None,
    **fields: Any,
) -> Prompt:
    """An inference prompt: as `build_example`, but the last turn has no answer (it is generated)."""
    config = config or PromptConfig()
    turns = _conversation(task, dict(fields))
    input_ids, _, _ = _encode(
        turns, tokenizer=tokenizer, vocab=vocab, config=config, rng=rng, for_training=False
    )
    info = _prompt_info(turns[-1])
    if info.answer == "motion" and info.persons is None:
        # A prediction / edit of the conversation's last motion keeps that motion's people.
        info = Prompt([], info.task, "motion", _last_persons(turns))
    return Prompt(input_ids, info.task, info.answer, info.persons, info.forced)


def _last_persons(turns: list[Turn]) -> tuple[str, ...] | None:
    for turn in reversed(turns):
        for m in (turn.answer, turn.motion):
            if isinstance(m, MotionCodes):
                return ("a", "b") if turn.task is Task.REACTION else m.persons
    return None


def reaction_prompt_ids(
    *, tokenizer: Any, vocab: MotionVocab, config: PromptConfig | None = None, instruction: str | None = None
) -> list[int]:
    """Token ids of a streaming reaction's prompt, up to the assistant header.

    The reaction template never renders the partner's motion (it arrives step by step inside the
    answer span), so the ids do not depend on it; `build_prompt` still wants a well-formed turn,
    and one step of partner codes satisfies it.
    """
    one_step = MotionCodes(a=np.zeros((1, vocab.depth), dtype=np.int64))
    prompt = build_prompt(
        Task.REACTION, tokenizer=tokenizer, vocab=vocab, config=config, text=instruction, motion=one_step
    )
    return prompt.input_ids
