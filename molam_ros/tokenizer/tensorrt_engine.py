"""Native TensorRT engines for the tokenizer graphs: building them and running them.

`tensorrt` is imported lazily: it exists only on machines with an NVIDIA GPU (JetPack on a Jetson,
the `tensorrt` wheels on a desktop GPU). Where it is missing, `TensorRTEngine` raises ImportError
with the reason and `create_engine` falls back (engines.py).

Building (`molam export --format tensorrt`): each ONNX graph becomes `<graph>.fp32.plan`, and an
FP16 build `<graph>.fp16.plan` is kept only when it agrees with onnxruntime's FP32 result on a
validation input (codes identical for at least 99.5% of entries, frames within 1e-2 in normalised
units); the manifest's `tensorrt` section records which precision each graph uses and why. Whole-
sequence graphs get an optimisation profile over the time axis; step graphs over the batch only.
GPU buffers are torch CUDA tensors, which avoids a dependency on pycuda/cuda-python.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.engine_base import State, TokenizerEngine, config_depths, state_zeros
from molam_ros.tokenizer.export import GRAPHS, MANIFEST, read_manifest

log = logging.getLogger(__name__)

CODE_AGREEMENT = 0.995  # FP16 encoder codes must match FP32 on this share of entries
FRAME_TOLERANCE = 1e-2  # FP16 decoder frames within this of FP32 (normalised feature units)


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as e:
        raise ImportError(
            "TensorRT is not installed here (it needs an NVIDIA GPU: JetPack on Jetson, or the tensorrt "
            f"wheels with a CUDA driver); use the onnxruntime or torch engine instead ({e})"
        ) from e
    import torch

    if not torch.cuda.is_available():
        raise ImportError("TensorRT is installed but torch sees no CUDA device to run its engines on")
    return trt


def _profile_shapes(
    manifest: dict[str, Any], graph: str, max_batch: int, max_frames: int
) -> dict[str, tuple]:
    """(min, opt, max) shape of every input of a graph."""
    c, l = manifest["config"], manifest["stride"]
    F, D = c["feature_dim"], config_depths(c)
    max_steps = max(1, max_frames // l)
    if graph == "encoder":
        return {"features": ((1, l, F), (1, min(64, max_steps) * l, F), (max_batch, max_steps * l, F))}
    if graph == "decoder":
        return {"codes": ((1, 1, D), (1, min(64, max_steps), D), (max_batch, max_steps, D))}
    shapes = manifest["encoder_state_shapes" if graph == "encoder_step" else "decoder_state_shapes"]
    first = ("frames", (l, F)) if graph == "encoder_step" else ("codes", (1, D))
    out = {first[0]: ((1, *first[1]), (1, *first[1]), (max_batch, *first[1]))}
    for i, s in enumerate(shapes):
        out[f"state_{i}"] = ((1, *s), (1, *s), (max_batch, *s))
    return out


def build_plan(
    onnx_path: Path, plan_path: Path, shapes: dict[str, tuple], *, fp16: bool, workspace_gb: float = 1.0
) -> None:
    """Parse an ONNX graph and serialise a TensorRT engine with one optimisation profile."""
    trt = _import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_path.write_bytes(bytes(serialized))


class _Plan:
    """One deserialised engine and its execution context; runs numpy in, numpy out."""

    def __init__(self, trt: Any, path: Path, inputs: list[str], outputs: list[str]) -> None:
        import torch

        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{path}: not a TensorRT engine for this TensorRT version/GPU; rebuild it")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        # Bind in the export's order (the manifest's names), whatever order the engine lists them.
        if sorted(names) != sorted([*inputs, *outputs]):
            raise RuntimeError(f"{path}: engine tensors {names} do not match the export's {inputs + outputs}")
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._dtypes = {
            n: torch.from_numpy(np.zeros(0, trt.nptype(self.engine.get_tensor_dtype(n)))).dtype for n in names
        }
        self.stream = torch.cuda.Stream()

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        keep = []
        with torch.cuda.stream(self.stream):
            for name, a in zip(self.inputs, arrays, strict=True):
                t = torch.from_numpy(np.ascontiguousarray(a)).to(
                    "cuda", self._dtypes[name], non_blocking=True
                )
                keep.append(t)
                self.context.set_input_shape(name, tuple(t.shape))
                self.context.set_tensor_address(name, t.data_ptr())
            outs = []
            for name in self.outputs:
                t = torch.empty(
                    tuple(self.context.get_tensor_shape(name)), dtype=self._dtypes[name], device="cuda"
                )
                outs.append(t)
                self.context.set_tensor_address(name, t.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        return [o.cpu().numpy() for o in outs]


def build_tensorrt(
    export_dir: str | Path, *, max_batch: int = 4, max_frames: int = 1024, fp16: bool = True
) -> dict[str, Any]:
    """Build a plan per graph of an export (FP16 where it keeps accuracy) and record it in the manifest."""
    import onnxruntime as ort

    trt = _import_tensorrt()
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    report: dict[str, Any] = {"tensorrt_version": trt.__version__, "graphs": {}}
    for graph in GRAPHS:
        onnx_path = export_dir / manifest["graphs"][graph]["file"]
        shapes = _profile_shapes(manifest, graph, max_batch, max_frames)
        fp32_plan = export_dir / f"{graph}.fp32.plan"
        build_plan(onnx_path, fp32_plan, shapes, fp16=False)
        chosen, why = "fp32", "FP16 not requested"
        if fp16:
            fp16_plan = export_dir / f"{graph}.fp16.plan"
            build_plan(onnx_path, fp16_plan, shapes, fp16=True)
            inputs = _validation_inputs(manifest, graph)
            ref = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
                None, dict(zip(manifest["graphs"][graph]["inputs"], inputs, strict=True))
            )
            got = _Plan(trt, fp16_plan, **_io(manifest, graph))(*inputs)
            agree, err = _agreement(ref, got)
            if agree >= CODE_AGREEMENT and err <= FRAME_TOLERANCE:
                chosen, why = "fp16", f"FP16 agrees with FP32: codes {agree:.4f}, max frame error {err:.2e}"
            else:
                why = f"FP16 rejected: codes agree {agree:.4f} (need {CODE_AGREEMENT}), max error {err:.2e}"
        report["graphs"][graph] = {"precision": chosen, "plan": f"{graph}.{chosen}.plan", "why": why}
        log.info("TensorRT %s: %s (%s)", graph, chosen, why)
    manifest["tensorrt"] = report
    (export_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return report


def _io(manifest: dict[str, Any], graph: str) -> dict[str, list[str]]:
    return {"inputs": manifest["graphs"][graph]["inputs"], "outputs": manifest["graphs"][graph]["outputs"]}


def _validation_inputs(manifest: dict[str, Any], graph: str) -> list[np.ndarray]:
    """Realistic-scale inputs: normalised features are ~N(0, 1); states from a warm stream."""
    rng = np.random.default_rng(0)
    c, l = manifest["config"], manifest["stride"]
    F, D, K = c["feature_dim"], config_depths(c), c["codebook_size"]
    if graph == "encoder":
        return [rng.standard_normal((1, 64 * l, F)).astype(np.float32)]
    if graph == "decoder":
        return [rng.integers(0, K, (1, 64, D)).astype(np.int64)]
    shapes = manifest["encoder_state_shapes" if graph == "encoder_step" else "decoder_state_shapes"]
    state = [rng.standard_normal((1, *s)).astype(np.float32) for s in shapes]
    if graph == "encoder_step":
        return [rng.standard_normal((1, l, F)).astype(np.float32), *state]
    return [rng.integers(0, K, (1, 1, D)).astype(np.int64), *state]


def _agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    """(share of equal integer entries, max abs difference of float outputs)."""
    agree, err = 1.0, 0.0
    for r, g in zip(ref, got, strict=True):
        if np.issubdtype(r.dtype, np.integer):
            agree = min(agree, float(np.mean(r == g.astype(r.dtype))))
        else:
            err = max(err, float(np.abs(r - g).max()))
    return agree, err


class TensorRTEngine(TokenizerEngine):
    """The export's TensorRT plans on the GPU (built by `molam export --format tensorrt`)."""

    name = "tensorrt"

    def __init__(self, export_dir: str | Path, *, precision: str = "auto") -> None:
        trt = _import_tensorrt()
        self.export_dir = Path(export_dir)
        self.manifest = read_manifest(self.export_dir)
        built = self.manifest.get("tensorrt")
        if not built:
            raise FileNotFoundError(
                f"{self.export_dir}: no TensorRT plans; run molam export --format tensorrt"
            )
        self.plans = {}
        for graph in GRAPHS:
            plan = built["graphs"][graph]["plan"] if precision == "auto" else f"{graph}.{precision}.plan"
            self.plans[graph] = _Plan(trt, self.export_dir / plan, **_io(self.manifest, graph))
        m, c = self.manifest, self.manifest["config"]
        stats = FeatureStats(
            np.asarray(m["stats"]["mean"], np.float32),
            np.asarray(m["stats"]["std"], np.float32),
            m["stats"]["count"],
        )
        super().__init__(stats, int(m["stride"]), config_depths(c), int(c["feature_dim"]))

    def init_encoder_state(self, batch: int = 1) -> State:
        return state_zeros(self.manifest["encoder_state_shapes"], batch)

    def init_decoder_state(self, batch: int = 1) -> State:
        return state_zeros(self.manifest["decoder_state_shapes"], batch)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return self.plans["encoder"](x)[0].astype(np.int64)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self.plans["decoder"](codes)[0].astype(np.float32)

    def _encode_step(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        out = self.plans["encoder_step"](x, *state)
        return out[0].astype(np.int64), [s.astype(np.float32) for s in out[1:]]

    def _decode_step(self, codes: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        out = self.plans["decoder_step"](codes, *state)
        return out[0].astype(np.float32), [s.astype(np.float32) for s in out[1:]]
