"""What a clause means, by nearest neighbours in a sentence encoder's space (agent/encoder.py).

The rules planner (agent/rules_planner.py) keeps the rules for what is exact (numbers, durations,
"then", questions by their form); what a clause *is* when the rules have no cue for it comes from
here: a clause is embedded and compared with a small bank of labelled example clauses per role,

- `generate`: something for the robot to do on its own ("do a cartwheel", "show me a karate kick");
- `react`: something that depends on what the partner does ("stay out of his way", "lead her in a
  slow waltz", "keep your distance from him");
- `edit`: a change to the last motion ("try it with more attitude", "not quite, again but softer");
- `chat`: small talk, nothing to do ("good job!", "you're funny", "how's it going");

and the role is the one whose three nearest examples are closest on average, when it wins by a
margin; otherwise the rules' own answer stands. The examples are written here, not taken from any
evaluation set (tests/data/planner_requests.jsonl or the blind sets), so the scores on those sets
measure how the meaning generalises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from molam_ros.agent.encoder import SentenceEncoder, shared_encoder

log = logging.getLogger(__name__)

TOP_K = 3

EXAMPLES: dict[str, tuple[str, ...]] = {
    "generate": (
        "do a cartwheel", "show me a karate kick", "perform a little dance", "jump up and down",
        "take a bow", "spin around", "walk across the room", "do some jumping jacks", "touch your toes",
        "stretch your arms", "march on the spot", "pretend to swim", "mime playing the guitar",
        "act like a robot", "sit down on the floor", "stand on one leg", "throw an imaginary ball",
        "do the chicken dance", "leave the room", "head for the exit", "turn around and go away",
        "show some kung fu moves", "a victory pose", "a slow bow", "wave goodbye", "kneel down",
        "look around", "shadow box in place", "flex your muscles", "do a push-up",
        "wave at her", "give him a hug", "shake her hand", "walk up to him", "bow to her",
        "hand him the ball", "greet her with a nod", "point at him", "high five him", "hug her",
    ),
    "react": (
        "stay out of his way", "keep your distance from her", "lead her in a slow waltz",
        "follow his lead", "let her lead the dance", "block his punches", "catch whatever she throws",
        "let him pass", "make room for her", "stay between him and the door", "move out of her path",
        "keep up with her", "go wherever he goes", "keep away from him", "stay in step with her",
        "match her pace", "avoid bumping into him", "spar with him", "partner her in a tango",
        "take turns with him", "give way to her", "stay at arm's length from him", "circle around him",
        "swing her round in the dance", "let him come to you", "wait for her to finish, then respond",
    ),
    "edit": (
        "try it with more attitude", "not quite, try again", "do it with more energy",
        "that was too stiff", "again but softer", "less dramatic please", "with more feeling this time",
        "put more swagger into it", "make that smoother", "a bit more enthusiasm", "hmm, not like that",
        "too much, tone it down", "give it more style", "more relaxed this time", "that was off, redo it",
        "now the same but sadder", "bigger movements", "a little less robotic", "more gently",
    ),
    "chat": (
        "good job", "well done", "nice work", "you're funny", "how are you", "how's it going",
        "thanks a lot", "that was awesome", "I like you", "you're doing great", "hello robot",
        "good morning", "nice to meet you", "see you later", "what's your name", "are you a robot",
        "that's cool", "love it", "haha that was fun", "I'm bored", "it's a nice day", "you rock",
        "sounds good", "never mind", "okay cool", "that was impressive", "lovely", "bravo",
        "i'm tired today", "what a great show", "you look nice", "fantastic", "wonderful",
        "do you like music", "how old are you", "who built you", "are you happy",
        "what's your favourite food",
        "do you have feelings", "where do you live", "I'm proud of you", "my day was rough",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Meaning:
    """The nearest role of a clause: its score (mean cosine of the top-3 examples) and its margin."""

    role: str
    score: float
    margin: float
    scores: dict[str, float]


class MeaningModel:
    """Nearest-example roles of clauses; the example bank is embedded once at construction."""

    def __init__(self, encoder: SentenceEncoder | None = None) -> None:
        self.encoder = encoder or shared_encoder()
        self.roles = list(EXAMPLES)
        texts = [t for role in self.roles for t in EXAMPLES[role]]
        self.labels = np.array([i for i, role in enumerate(self.roles) for _ in EXAMPLES[role]])
        self.bank = self.encoder.encode(texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def meanings(self, vectors: np.ndarray) -> list[Meaning]:
        """One Meaning per row of `vectors` (embeddings of clauses)."""
        sims = vectors @ self.bank.T  # (n, examples)
        out = []
        for row in sims:
            scores = {}
            for i, role in enumerate(self.roles):
                top = np.sort(row[self.labels == i])[-TOP_K:]
                scores[role] = float(top.mean())
            ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
            (role, best), (_, second) = ranked[0], ranked[1]
            out.append(Meaning(role, best, best - second, scores))
        return out

    def of(self, texts: list[str]) -> list[Meaning]:
        return self.meanings(self.embed(texts)) if texts else []
