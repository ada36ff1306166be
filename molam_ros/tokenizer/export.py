"""Export a tokenizer checkpoint to ONNX graphs (and, on an NVIDIA GPU, TensorRT engines).

An export directory holds four graphs and a manifest:

    encoder.onnx       features (B, T, 262), normalised -> codes (B, T/l, D) int64; T dynamic
    decoder.onnx       codes (B, N, D) int64 -> normalised features (B, N l, 262); N dynamic
    encoder_step.onnx  frames (B, l, 262), state_0..state_k -> codes (B, 1, D), new_state_0..k
    decoder_step.onnx  codes (B, 1, D), state_0..state_k -> frames (B, l, 262), new_state_0..k
    manifest.json      config, feature stats, state shapes, tensor names, export checks
    *.plan             TensorRT engines (molam export --format tensorrt), next to their ONNX graph

The step graphs (traced from `EncoderStep` / `DecoderStep`) take and return their convolution state
explicitly, so one step costs the same however long the stream has run, and an engine holds no
hidden state between calls. Normalisation stays outside the graphs (the engines apply the manifest's
stats), so the same graphs serve callers that already work in normalised features.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molam_ros.tokenizer.rqvae import RQVAE, load_checkpoint

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "molam-tokenizer-export"
GRAPHS = ("encoder", "decoder", "encoder_step", "decoder_step")


class _Whole(torch.nn.Module):
    """encode/decode of the whole sequence without input checks (they are Python-side)."""

    def __init__(self, model: RQVAE, direction: str) -> None:
        super().__init__()
        self.model, self.direction = model, direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.direction == "encoder":
            return self.model.encode(x, check=False)
        return self.model.decode(x, check=False)


class EncoderStep(torch.nn.Module):
    """forward(frames (B, l, F), *state) -> (codes (B, 1, D) int64, *new_state); for export.

    The state tensors are in `model.init_encoder_state` order; inputs are not checked.
    """

    def __init__(self, model: RQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        codes, new_state = self.model.encode_step(frames, list(state), check=False)
        return (codes, *new_state)


class DecoderStep(torch.nn.Module):
    """forward(codes (B, 1, D) int64, *state) -> (frames (B, l, F), *new_state); for export."""

    def __init__(self, model: RQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        frames, new_state = self.model.decode_step(codes, list(state), check=False)
        return (frames, *new_state)


@dataclass(frozen=True)
class GraphSpec:
    """Names and dynamic axes of one exported graph."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]


def graph_specs(model: RQVAE) -> dict[str, GraphSpec]:
    n_enc = len(model.init_encoder_state(1))
    n_dec = len(model.init_decoder_state(1))

    def states(prefix: str, n: int) -> tuple[str, ...]:
        return tuple(f"{prefix}{i}" for i in range(n))

    batch = {0: "batch"}
    return {
        "encoder": GraphSpec(
            ("features",),
            ("codes",),
            {"features": {0: "batch", 1: "time"}, "codes": {0: "batch", 1: "steps"}},
        ),
        "decoder": GraphSpec(
            ("codes",),
            ("features",),
            {"codes": {0: "batch", 1: "steps"}, "features": {0: "batch", 1: "time"}},
        ),
        "encoder_step": GraphSpec(
            ("frames", *states("state_", n_enc)),
            ("codes", *states("new_state_", n_enc)),
            {n: batch for n in ("frames", "codes", *states("state_", n_enc), *states("new_state_", n_enc))},
        ),
        "decoder_step": GraphSpec(
            ("codes", *states("state_", n_dec)),
            ("frames", *states("new_state_", n_dec)),
            {n: batch for n in ("codes", "frames", *states("state_", n_dec), *states("new_state_", n_dec))},
        ),
    }


def _example_inputs(model: RQVAE, graph: str, steps: int = 8) -> tuple[torch.Tensor, ...]:
    """Inputs to trace a graph with; codes are valid indices so the traced gather is exercised."""
    c = model.config
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, c.codebook_size, (1, steps, c.depths), generator=g)
    if graph == "encoder":
        return (torch.randn(1, steps * model.stride, c.feature_dim, generator=g),)
    if graph == "decoder":
        return (codes,)
    if graph == "encoder_step":
        return (torch.randn(1, model.stride, c.feature_dim, generator=g), *model.init_encoder_state(1))
    return (codes[:, :1], *model.init_decoder_state(1))


def _module(model: RQVAE, graph: str) -> torch.nn.Module:
    if graph == "encoder_step":
        return EncoderStep(model)
    if graph == "decoder_step":
        return DecoderStep(model)
    return _Whole(model, graph)


def export_onnx(checkpoint: str | Path, out_dir: str | Path, *, opset: int = 18) -> dict[str, Any]:
    """Export the four graphs of a checkpoint, check each against torch with onnxruntime, and
    write the manifest. Returns the manifest.

    The TorchScript-based exporter (`dynamo=False`) is used: it writes one self-contained file per
    graph with named dynamic axes, and takes half a second where the dynamo exporter takes several;
    both gave identical graphs' outputs here.
    """
    import onnxruntime as ort

    model, config, stats = load_checkpoint(checkpoint)
    model = model.float().eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = graph_specs(model)
    checks: dict[str, dict[str, float]] = {}
    for graph in GRAPHS:
        spec, module, inputs = specs[graph], _module(model, graph), _example_inputs(model, graph)
        path = out / f"{graph}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
            torch.onnx.export(
                module,
                inputs,
                str(path),
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                dynamic_axes=spec.dynamic,
                opset_version=opset,
                dynamo=False,
            )
        checks[graph] = _check_graph(ort, path, module, inputs, spec)
        log.info("exported %s (%s)", path, checks[graph])
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "checkpoint": str(Path(checkpoint).resolve()),
        "config": config.to_dict(),
        "stride": model.stride,
        "stats": {"mean": stats.mean.tolist(), "std": stats.std.tolist(), "count": stats.count},
        "encoder_state_shapes": [list(s.shape[1:]) for s in model.init_encoder_state(1)],
        "decoder_state_shapes": [list(s.shape[1:]) for s in model.init_decoder_state(1)],
        "graphs": {
            g: {"file": f"{g}.onnx", "inputs": list(s.inputs), "outputs": list(s.outputs)}
            for g, s in specs.items()
        },
        "checks": checks,
        "opset": opset,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _check_graph(
    ort: Any, path: Path, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: GraphSpec
) -> dict[str, float]:
    """Run the ONNX graph on the trace inputs and on a longer input, compare with torch."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = module(*inputs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = session.run(None, {n: t.numpy() for n, t in zip(spec.inputs, inputs, strict=True)})
    result = {"max_abs_diff": 0.0, "code_mismatch": 0.0}
    for r, g in zip(ref, got, strict=True):
        if r.dtype == torch.int64:
            result["code_mismatch"] = max(result["code_mismatch"], float(np.mean(r.numpy() != g)))
        else:
            result["max_abs_diff"] = max(result["max_abs_diff"], float(np.abs(r.numpy() - g).max()))
    return result


def read_manifest(export_dir: str | Path) -> dict[str, Any]:
    """The checked manifest of an export directory; a clear error names what is missing."""
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; export a checkpoint first (molam export CKPT --out DIR)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not a molam tokenizer export (format {manifest.get('format')!r})")
    for graph in GRAPHS:
        graph_file = Path(export_dir) / manifest["graphs"][graph]["file"]
        if not graph_file.is_file():
            raise FileNotFoundError(f"{graph_file}: missing graph of the export in {export_dir}")
    return manifest
