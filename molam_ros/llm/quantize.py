"""Int8 weights for CPU inference: what lets the live reaction keep up on two cores.

A streaming step feeds about ten tokens through the backbone, so it is bound by reading the
weights, not by arithmetic: SmolLM2-135M in float32 is 540 MB of Linear weights per step. Dynamic
int8 quantization (weights stored int8 per tensor, activations quantized on the fly; PyTorch's
`quantize_dynamic`, which runs on fbgemm/oneDNN VNNI kernels) reads a quarter of that. Measured with
`molam bench llm --quantize int8` on this 2-core CPU: 87 -> 33 ms per step with 2 threads, and
35 ms with one thread, which leaves the second core to DDS and the rest of the node.

Only inference, and only for the streaming step: a quantized model cannot be trained or saved, and
text is where int8 hurts. Greedy depth-head codes agree with float32 on 99 % of codes, but a text
answer's first-token logits moved from words to motion markers and captions came out empty (the
activations are quantized per tensor, and LLM activations have outlier channels; per-channel
weights made it worse). So the reaction node keeps a float copy for text answers (pipeline.py).
Only the decoder's layers are quantized: the depth head stays float (0.3 M parameters), and so do
the embeddings and the LM head.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

QUANTIZATIONS = ("none", "int8")


def quantize(mlm: Any, mode: str = "int8") -> Any:
    """`mlm` (a MotionLM in eval mode) with its Linear layers in `mode`; "none" returns it unchanged."""
    if mode not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {mode!r}")
    if mode == "none":
        return mlm
    if mlm.device.type != "cpu":
        raise ValueError(f"int8 dynamic quantization runs on the CPU; the model is on {mlm.device}")
    if mlm.training:
        raise ValueError("quantize a model for inference only (it is in training mode)")
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao, which is not in our registries;
        # the API is still the supported eager-mode path in this torch.
        warnings.simplefilter("ignore")
        # The transformer's layers only; the LM head stays float (the streaming step never reads it).
        qdq = torch.ao.quantization.quantize_dynamic
        qdq(mlm.decoder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    mlm.info = {**mlm.info, "quantization": mode}
    return mlm
