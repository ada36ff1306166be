"""The quality table of the motion-language model on held-out generator clips.

The model does three things whose quality a number can tell, each judged by its own module:

- reaction: MPJPE of the generated reactor against the recorded one, next to two baselines
  (`reaction_baselines.py`);
- motion-to-text: whether the caption names the clip's interaction type and style
  (`caption_labels.py`);
- text-to-motion: whether the generated pair is recognisable as the asked interaction
  (`interaction_classifier.py`).

`QualityTable` collects the per-clip results and prints the markdown table of the README
(`molam llm eval`, llm/evaluate.py runs the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from molam_ros.llm.caption_labels import caption_labels


@dataclass(frozen=True)
class QualityRow:
    """One line of the quality table: a measure, the model's figure, baselines where they exist."""

    measure: str
    model: str
    still: str = ""
    mirror: str = ""
    count: str = ""


QUALITY_HEADER = ("measure", "model", "still baseline", "mirror baseline", "clips")


def format_share(hits: int, total: int) -> str:
    """'87.5 % (35/40)'; an em dash when nothing was measured."""
    if total <= 0:
        return "\u2014"
    return f"{100.0 * hits / total:.1f} % ({hits}/{total})"


def format_quality_table(rows: Sequence[QualityRow]) -> str:
    """A markdown table of quality rows (numbers are formatted by the caller or `QualityTable`)."""
    lines = ["| " + " | ".join(QUALITY_HEADER) + " |", "|" + "|".join("---" for _ in QUALITY_HEADER) + "|"]
    for r in rows:
        lines.append("| " + " | ".join((r.measure, r.model, r.still, r.mirror, r.count)) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class QualityTable:
    """Collects per-clip results of the three tasks and prints them as the quality table.

    Reaction MPJPE is the mean over clips of each clip's MPJPE (every clip counts the same, however
    long); shares count clips.
    """

    reaction: list[dict[str, float]] = field(default_factory=list)
    m2t_type: list[bool] = field(default_factory=list)
    m2t_style: list[bool] = field(default_factory=list)
    t2m: list[bool] = field(default_factory=list)

    def add_reaction(self, errors: dict[str, float]) -> None:
        """One clip's `reaction_errors` (keys model, still, mirror)."""
        self.reaction.append(dict(errors))

    def add_caption(self, caption: str, interaction: str, style: str) -> tuple[bool, bool]:
        """Score one generated caption against the clip's interaction and style; returns the matches."""
        got_type, got_style = caption_labels(caption)
        match = (got_type == interaction, got_style == style)
        self.m2t_type.append(match[0])
        self.m2t_style.append(match[1])
        return match

    def add_text_to_motion(self, predicted: str, asked: str) -> bool:
        """One generated pair: the classifier's verdict against the interaction that was asked."""
        self.t2m.append(predicted == asked)
        return self.t2m[-1]

    def _mean_mm(self, key: str) -> str:
        values = [r[key] for r in self.reaction if key in r]
        return f"{np.mean(values):.1f}" if values else "\u2014"

    def rows(self) -> list[QualityRow]:
        """Reaction MPJPE with both baselines, then the three shares with their clip counts."""

        def share(name: str, hits: list[bool]) -> QualityRow:
            return QualityRow(name, format_share(sum(hits), len(hits)), count=str(len(hits)))

        reaction = QualityRow(
            "reaction MPJPE (mm)",
            self._mean_mm("model"),
            self._mean_mm("still"),
            self._mean_mm("mirror"),
            str(len(self.reaction)),
        )
        return [
            reaction,
            share("m2t type match", self.m2t_type),
            share("m2t style match", self.m2t_style),
            share("t2m classifier agreement", self.t2m),
        ]

    def markdown(self) -> str:
        return format_quality_table(self.rows())
