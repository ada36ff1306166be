"""The causal RQ-VAE motion tokenizer: model, streaming, training and evaluation.

    codes = model.encode(stats.normalize(x))            # (B, T, 262) -> (B, T/l, D)
    frames = stats.denormalize(model.decode(codes))     # (B, T/l, D) -> (B, T, 262)

See `rqvae.py` for the model (`encode_step` / `decode_step` stream it with an explicit state),
`train.py` and `evaluate.py` for the loops, `export.py` for the ONNX graphs (with the step modules
they are traced from), and `engines.py` (with `tensorrt_engine.py`) for the one encode/decode
interface over torch, onnxruntime and TensorRT: the one streaming path, which the model-language
layer and the runtime both use.
"""

from molam_ros.tokenizer.config import PRESETS, TokenizerConfig, preset
from molam_ros.tokenizer.evaluate import evaluate
from molam_ros.tokenizer.export import DecoderStep, EncoderStep
from molam_ros.tokenizer.rqvae import RQVAE, CheckpointError, load_checkpoint, save_checkpoint
from molam_ros.tokenizer.train import TrainConfig, train

__all__ = [
    "PRESETS",
    "RQVAE",
    "CheckpointError",
    "DecoderStep",
    "EncoderStep",
    "TokenizerConfig",
    "TrainConfig",
    "evaluate",
    "load_checkpoint",
    "preset",
    "save_checkpoint",
    "train",
]
