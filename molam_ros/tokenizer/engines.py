"""Tokenizer engines: one interface, three backends (torch, onnxruntime, TensorRT).

Every engine takes and returns numpy arrays of RAW features (it applies the checkpoint's
normalisation itself) and int64 codes, whole-sequence or one step of l frames at a time with an
explicit state, so callers never branch on the backend:

    engine = create_engine(EngineConfig(backend="onnxruntime", checkpoint=..., export_dir=...))
    codes = engine.encode(features)            # (B, T, 262) -> (B, T/l, D)
    state = engine.init_encoder_state(batch=1)
    codes, state = engine.encode_step(frames, state)   # frames (B, l, 262)

`create_engine` walks the configured fallback chain (tensorrt -> onnxruntime -> torch by default)
and logs why a backend was skipped, so a robot without a GPU still runs.

The interface itself is `engine_base.TokenizerEngine`; the TensorRT backend lives in
`tensorrt_engine.py` and is imported only when asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.engine_base import State, TokenizerEngine, config_depths, state_zeros

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")


@dataclass(frozen=True)
class EngineConfig:
    """Which backend runs the tokenizer, and where its files are.

    backend: first choice, one of BACKENDS.
    checkpoint: tokenizer checkpoint directory (torch backend; also the source of exports).
    export_dir: directory of `molam export` (ONNX graphs, manifest, TensorRT plans).
    fallback: backends tried in order after `backend` fails to load (empty: fail instead).
    device: torch device for the torch backend ("cpu", "cuda", "cuda:1").
    ort_providers: onnxruntime execution providers in order of preference; those not available
        in the installed onnxruntime are dropped (the CPU provider always remains).
    threads: intra-op threads for torch and onnxruntime; 0 leaves the library default. One thread
        is usually fastest for the small per-step graphs and leaves cores to the LLM.
    """

    backend: str = "onnxruntime"
    checkpoint: str | None = None
    export_dir: str | None = None
    fallback: tuple[str, ...] = ("onnxruntime", "torch")
    device: str = "cpu"
    ort_providers: tuple[str, ...] = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    threads: int = 1
    tensorrt_precision: str = "auto"  # "auto": the plan `molam export` chose (FP16 where accurate)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for b in (self.backend, *self.fallback):
            if b not in BACKENDS:
                raise ValueError(f"unknown engine backend {b!r}; expected one of {BACKENDS}")


class TorchEngine(TokenizerEngine):
    """The checkpoint run by PyTorch eager (CPU or CUDA): the reference every backend matches."""

    name = "torch"

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", threads: int = 0) -> None:
        import torch

        from molam_ros.tokenizer.rqvae import load_checkpoint

        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.model, config, stats = load_checkpoint(checkpoint, device=self.device)
        self.model.eval()
        super().__init__(stats, self.model.stride, config.depths, config.feature_dim)

    def _t(self, x: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def init_encoder_state(self, batch: int = 1) -> State:
        return [s.cpu().numpy() for s in self.model.init_encoder_state(batch)]

    def init_decoder_state(self, batch: int = 1) -> State:
        return [s.cpu().numpy() for s in self.model.init_decoder_state(batch)]

    def _encode(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model.encode(self._t(x), check=False).cpu().numpy()

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model.decode(self._t(codes), check=False).cpu().numpy()

    def _encode_step(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        with self._torch.inference_mode():
            codes, new = self.model.encode_step(self._t(x), [self._t(s) for s in state], check=False)
        return codes.cpu().numpy(), [s.cpu().numpy() for s in new]

    def _decode_step(self, codes: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        with self._torch.inference_mode():
            frames, new = self.model.decode_step(self._t(codes), [self._t(s) for s in state], check=False)
        return frames.cpu().numpy(), [s.cpu().numpy() for s in new]


class OnnxRuntimeEngine(TokenizerEngine):
    """The exported ONNX graphs run by onnxruntime (CPU, or CUDA/TensorRT execution providers)."""

    name = "onnxruntime"

    def __init__(
        self,
        export_dir: str | Path,
        *,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        from molam_ros.tokenizer.export import GRAPHS, read_manifest

        self.export_dir = Path(export_dir)
        self.manifest = read_manifest(self.export_dir)
        available = set(ort.get_available_providers())
        self.providers = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        dropped = [p for p in providers if p not in available]
        if dropped:
            log.info(
                "onnxruntime: providers %s not available in this build, using %s", dropped, self.providers
            )
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.sessions = {
            g: ort.InferenceSession(
                str(self.export_dir / self.manifest["graphs"][g]["file"]), options, providers=self.providers
            )
            for g in GRAPHS
        }
        m, c = self.manifest, self.manifest["config"]
        stats = FeatureStats(
            mean=np.asarray(m["stats"]["mean"], np.float32),
            std=np.asarray(m["stats"]["std"], np.float32),
            count=m["stats"]["count"],
        )
        super().__init__(stats, int(m["stride"]), config_depths(c), int(c["feature_dim"]))

    def init_encoder_state(self, batch: int = 1) -> State:
        return state_zeros(self.manifest["encoder_state_shapes"], batch)

    def init_decoder_state(self, batch: int = 1) -> State:
        return state_zeros(self.manifest["decoder_state_shapes"], batch)

    def _run(self, graph: str, *inputs: np.ndarray) -> list[np.ndarray]:
        names = self.manifest["graphs"][graph]["inputs"]
        if len(names) != len(inputs):
            raise ValueError(f"{graph}: expected {len(names) - 1} state tensors, got {len(inputs) - 1}")
        return self.sessions[graph].run(None, dict(zip(names, inputs, strict=True)))

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return self._run("encoder", x)[0]

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self._run("decoder", codes)[0]

    def _encode_step(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        out = self._run("encoder_step", x, *state)
        return out[0], out[1:]

    def _decode_step(self, codes: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        out = self._run("decoder_step", codes, *state)
        return out[0], out[1:]


def _load(backend: str, config: EngineConfig) -> TokenizerEngine:
    if backend == "torch":
        if not config.checkpoint:
            raise FileNotFoundError("the torch backend needs a tokenizer checkpoint directory (checkpoint)")
        return TorchEngine(config.checkpoint, device=config.device, threads=config.threads)
    if not config.export_dir:
        raise FileNotFoundError(
            f"the {backend} backend needs an export directory (molam export); none is configured"
        )
    if backend == "onnxruntime":
        return OnnxRuntimeEngine(config.export_dir, providers=config.ort_providers, threads=config.threads)
    from molam_ros.tokenizer.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(config.export_dir, precision=config.tensorrt_precision)


def create_engine(config: EngineConfig) -> TokenizerEngine:
    """The first backend of `config.backend, *config.fallback` that loads; each failure is logged.

    Raises RuntimeError naming every backend's reason when none loads.
    """
    order = list(dict.fromkeys((config.backend, *config.fallback)))
    reasons = []
    for backend in order:
        try:
            engine = _load(backend, config)
        except Exception as e:  # noqa: BLE001 - any failure of one backend means: try the next
            reasons.append(f"{backend}: {type(e).__name__}: {e}")
            log.warning("tokenizer engine %s unavailable (%s: %s)", backend, type(e).__name__, e)
            continue
        if backend != config.backend:
            log.warning("tokenizer engine: using fallback %s instead of %s", backend, config.backend)
        else:
            log.info("tokenizer engine: %s", backend)
        return engine
    raise RuntimeError("no tokenizer engine could be loaded:\n  " + "\n  ".join(reasons))
