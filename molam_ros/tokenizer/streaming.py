"""Streaming use of the tokenizer: a stateful convenience wrapper, and step modules for export.

`RQVAE.encode_step` / `decode_step` are pure functions of (input, state list). `StreamingTokenizer`
holds that state for a live stream and buffers frames until a whole block of l has arrived;
`EncoderStep` / `DecoderStep` present the same steps as `forward(x, *state) -> (y, *new_state)`,
the signature an ONNX or TensorRT step graph needs (no checks, no Python-side state).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.rqvae import RQVAE, State


class StreamingTokenizer:
    """Encode frames as they arrive and decode codes as they are produced, for `batch` streams.

    Frames may come in any number per call; they are buffered until a whole block of l frames is
    there, so the codes equal those of `model.encode` on the concatenated stream. With `stats`,
    frames in and out are raw features (normalised and de-normalised here); without, the caller
    works in normalised features.
    """

    def __init__(self, model: RQVAE, stats: FeatureStats | None = None, *, batch: int = 1) -> None:
        self.model = model.eval()
        self.stats = stats
        self.batch = batch
        self.reset()

    def reset(self) -> None:
        """Start new streams: zero state, empty buffer."""
        p = next(self.model.parameters())
        self._enc_state: State = self.model.init_encoder_state(self.batch)
        self._dec_state: State = self.model.init_decoder_state(self.batch)
        F_ = self.model.config.feature_dim
        self._pending = torch.zeros(self.batch, 0, F_, device=p.device, dtype=p.dtype)

    @property
    def pending(self) -> int:
        """Frames buffered towards the next block (0 .. l-1)."""
        return int(self._pending.shape[1])

    def _to_tensor(self, x: Tensor | np.ndarray) -> Tensor:
        p = next(self.model.parameters())
        t = torch.as_tensor(x, dtype=p.dtype, device=p.device)
        return t.unsqueeze(0) if t.ndim == 2 and self.batch == 1 else t

    @torch.no_grad()
    def push_frames(self, frames: Tensor | np.ndarray) -> Tensor:
        """frames (B, n, F), or (n, F) for one stream, n >= 0 -> codes (B, m, D) of the blocks completed."""
        x = self._to_tensor(frames)
        F_ = self.model.config.feature_dim
        if x.ndim != 3 or x.shape[0] != self.batch or x.shape[-1] != F_:
            raise ValueError(f"expected frames of shape ({self.batch}, n, {F_}), got {tuple(x.shape)}")
        if self.stats is not None:
            x = self.stats.normalize(x)
        x = torch.cat([self._pending, x], dim=1)  # (B, pending + n, F)
        ready = x.shape[1] - x.shape[1] % self.model.stride
        self._pending = x[:, ready:]
        if ready == 0:
            D = self.model.config.num_quantizers
            return torch.zeros(self.batch, 0, D, dtype=torch.long, device=x.device)
        codes, self._enc_state = self.model.encode_step(x[:, :ready], self._enc_state)
        return codes

    @torch.no_grad()
    def push_codes(self, codes: Tensor | np.ndarray) -> Tensor:
        """codes (B, m, d), or (m, d) for one stream -> frames (B, m l, F) (raw features with stats)."""
        c = torch.as_tensor(codes, device=next(self.model.parameters()).device)
        c = c.unsqueeze(0) if c.ndim == 2 and self.batch == 1 else c
        if c.ndim == 3 and c.shape[1] == 0:
            F_ = self.model.config.feature_dim
            return self._pending.new_zeros(self.batch, 0, F_)
        frames, self._dec_state = self.model.decode_step(c, self._dec_state)
        return self.stats.denormalize(frames) if self.stats is not None else frames


class EncoderStep(nn.Module):
    """forward(frames (B, l, F), *state) -> (codes (B, 1, D) int64, *new_state); for export.

    The state tensors are in `model.init_encoder_state` order; inputs are not checked.
    """

    def __init__(self, model: RQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        codes, new_state = self.model.encode_step(frames, list(state), check=False)
        return (codes, *new_state)


class DecoderStep(nn.Module):
    """forward(codes (B, 1, D) int64, *state) -> (frames (B, l, F), *new_state); for export."""

    def __init__(self, model: RQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        frames, new_state = self.model.decode_step(codes, list(state), check=False)
        return (frames, *new_state)
