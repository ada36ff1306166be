"""The completion model: a short window of sparse tracked points in, the full 22-joint body out.

Why this shape: AvatarPoser and its successors complete a body from three VR points with a
transformer over 40 frames; here a small MLP over a 16-frame (0.53 s) causal window of the same
points in the head's heading frame (motion/sparse.py) is enough to learn from a few thousand
clips on a CPU in minutes, costs well under a millisecond per frame, and is stateless (the window
is its state), so a live stream and a whole-clip pass give the same numbers.

    x (N, input_dim(W)) -> LayerNorm -> [Linear, GELU] x layers -> Linear -> (N, 22, 3)

The output is the body in the heading frame of the current frame (origin under the head on the
floor, +Z the head's facing). A checkpoint is a directory: `model.safetensors` (fp32 or fp16;
loading casts back to fp32) and `config.json` (format, the CompletionConfig, training metadata).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from molam_ros.motion.skeleton import NUM_JOINTS
from molam_ros.motion.sparse import input_dim

CHECKPOINT_FORMAT = "molam-completion"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CompletionCheckpointError(ValueError):
    """A directory that is not a readable completion checkpoint (the message says what is wrong)."""


@dataclass(frozen=True)
class CompletionConfig:
    """Size of the completion model.

    window: frames of tracked points seen (30 fps); 16 = 0.53 s, enough to tell a step from a lean.
    width, layers: the MLP; 384 x 3 is about 0.5 M parameters (1 MB in fp16).
    """

    window: int = 16
    width: int = 384
    layers: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            if int(getattr(self, f.name)) < 1:
                raise ValueError(f"CompletionConfig.{f.name} must be >= 1, got {getattr(self, f.name)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown CompletionConfig fields {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in data.items()})


class CompletionModel(nn.Module):
    """The MLP of the module docstring."""

    def __init__(self, config: CompletionConfig) -> None:
        super().__init__()
        self.config = config
        dims = [input_dim(config.window)] + [config.width] * config.layers
        blocks: list[nn.Module] = [nn.LayerNorm(dims[0])]
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.GELU()]
        blocks.append(nn.Linear(dims[-1], NUM_JOINTS * 3))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_dim) -> (N, 22, 3) the body in the heading frame."""
        return self.net(x).view(-1, NUM_JOINTS, 3)

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        """numpy in, numpy out, in batches: (N, input_dim) -> (N, 22, 3) float64."""
        self.eval()
        out = [
            self(torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))).numpy()
            for i in range(0, len(x), batch)
        ]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, NUM_JOINTS, 3))


def save_checkpoint(
    model: CompletionModel, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write `model.safetensors` and `config.json` into `directory` (temporary names, then renamed,
    so an interrupted save leaves the previous checkpoint whole); returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": asdict(model.config),
        "extra": extra or {},
    }
    tmp_w, tmp_c = directory / (WEIGHTS_FILE + ".tmp"), directory / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_w), metadata={"format": CHECKPOINT_FORMAT})
    tmp_c.write_text(json.dumps(info, indent=1))
    tmp_w.replace(directory / WEIGHTS_FILE)
    tmp_c.replace(directory / CONFIG_FILE)
    return directory


def read_info(directory: str | Path) -> dict[str, Any]:
    """The checked config.json of a completion checkpoint (no weights loaded)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CompletionCheckpointError(f"{path}: missing; is {directory} a completion checkpoint?")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CompletionCheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT:
        raise CompletionCheckpointError(f"{path}: not a molam completion checkpoint")
    if info.get("version") != CHECKPOINT_VERSION:
        raise CompletionCheckpointError(
            f"{path}: version {info.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    return info


def load_checkpoint(directory: str | Path) -> CompletionModel:
    """The model of a checkpoint directory, fp32, in eval mode; a clear error for a foreign file or
    weights that do not match the config."""
    directory = Path(directory)
    info = read_info(directory)
    try:
        config = CompletionConfig.from_dict(info["config"])
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except Exception as e:  # a bad config value, a missing or truncated weights file
        raise CompletionCheckpointError(f"{directory}: {e}") from e
    model = CompletionModel(config)
    expected = model.state_dict()
    bad = sorted(k for k in expected if k not in tensors or tensors[k].shape != expected[k].shape)
    bad += sorted(set(tensors) - set(expected))
    if bad:
        raise CompletionCheckpointError(f"{directory}: weights do not match the config: {bad[:6]}")
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval()
