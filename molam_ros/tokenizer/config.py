"""The tokenizer's architecture and loss settings, and its named presets.

`TokenizerConfig` is the model's contract: it is stored in full in every checkpoint
(`config.json`) and rebuilds the exact model, so a field is added here, never read from elsewhere.
Presets scale one design from `tiny` (unit tests, a minute of CPU training) to `paper` (the sizes
T2M-GPT and MoMask train on HumanML3D).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from molam_ros.motion.layout import DEFAULT_LAYOUT, layout_of

# The fields of TokenizerConfig that weigh the training loss: they change what training optimises,
# never the architecture, so a resumed run may set them (tokenizer/train.py, `loss_weights`).
LOSS_WEIGHTS = ("pos_weight", "vel_weight", "traj_weight", "rel_weight")


# What a config.json written before the relation codes means by their absence (from_dict).
BEFORE_RELATION_CODES = {
    "relation_quantizers": 0,
    "relation_width": 64,
    "relation_code_dim": 32,
    "relation_net": "conv",
}


@dataclass(frozen=True, kw_only=True)
class TokenizerConfig:
    """Architecture, quantizer and loss settings of the causal RQ-VAE (see `rqvae.py`).

    The defaults are the `small` preset, the one the shipped checkpoint is trained with.
    """

    # --- data
    # Numbers per person-frame; the width names the layout (motion/layout.py): 268 = ego, the
    # bounded default; 262 = intergen (absolute positions in a first-frame canonical frame).
    feature_dim: int = DEFAULT_LAYOUT.dim

    # --- encoder / decoder (T2M-GPT's 1-D conv stack, every conv causal)
    width: int = 192  # channels of every hidden conv; 512 in T2M-GPT/MoMask
    res_depth: int = 2  # residual blocks per resolution level; 3 in T2M-GPT
    dilation_growth: int = 3  # dilations growth**i inside a level (1, 3, 9, ...), largest first as T2M-GPT
    down_t: int = 2  # number of stride-2 levels: the time stride l = 2**down_t = 4 frames per token step
    conv_kernel: int = 3  # kernel of the input/output and residual convs
    # Kernel of the stride-2 convs (2 * stride, as T2M-GPT): each output also reads 2 frames of the
    # previous block, so block edges do not show in the latents.
    down_kernel: int = 4
    # Future frames a conv may see. Only 0 (strictly causal) is implemented; see __post_init__.
    lookahead: int = 0

    # --- residual quantizer (MoMask's RVQ: EMA codebooks with dead-code reset, quantizer dropout)
    code_dim: int = 192  # latent width the codebooks live in; T2M-GPT uses width == code_dim
    codebook_size: int = 512  # K codes per depth (MoMask uses 512 too)
    num_quantizers: int = 4  # D depths; MoMask uses 6
    ema_decay: float = 0.99  # codebook EMA (MoMask mu = 0.99); lower adapts faster, for short runs
    # A code whose EMA hit count per batch falls below this is re-seeded from a latent of the current
    # batch; 0 disables resets. MoMask uses 1.0 with 4096 latents per batch (8 per code on average);
    # the CPU recipe has 1024 (2 per code), where 1.0 would keep re-seeding rare but useful codes.
    # Scale it with the batch: about an eighth of batch * window / l / K.
    dead_code_threshold: float = 0.25
    commitment_beta: float = 0.02  # weight of ||z - sg(q)||^2 (T2M-GPT and MoMask: 0.02)
    # Chance per batch of training with only the first 1..D-1 depths (MoMask: 0.2), so that a
    # prefix of the codes decodes to a coarser version of the same motion.
    quantizer_dropout: float = 0.2

    # --- relation codes: the partner's place in codes of their own (ego layout only)
    # R depths of K codes over the relation to the partner (layout.relation: REL_POS, REL_HEAD), read
    # and written by a small causal conv encoder/decoder of their own, appended after the D body
    # depths: a step's codes are (D + R,). 0: no relation codes; the body codes carry the relation,
    # as in every tokenizer before them. Why: the body codes hold the partner's place ~31 mm off at
    # a mean 1.34 m and no loss weight or capacity bought it finer without costing the body (README,
    # "The shipped tokenizer"); 4 numbers that must be centimetre-exact need bits of their own.
    relation_quantizers: int = 0
    relation_width: int = 64  # channels of the relation encoder/decoder convs
    relation_code_dim: int = 32  # latent width of the relation codebooks
    # The relation's encoder and decoder: causal conv stacks shaped as the body's ("conv"), or an MLP
    # per token step of its l x 4 numbers ("step": no streaming state, a handful of graph operations).
    # Why both: at this size a streaming step is paid per graph operation, and the conv stacks
    # doubled the onnxruntime step (0.86 -> 2.0 ms, README "Benchmark").
    relation_net: str = "conv"

    # --- reconstruction loss: smooth L1 on normalised features, plus extra weight on two slices
    # Where smooth L1 turns from quadratic to linear, in normalised units. T2M-GPT's 1.0 leaves any
    # error below one std nearly free of gradient, and the std of an absolute position is about a
    # metre: the small preset stalled at 135-172 mm MPJPE after 1500 steps with 1.0, and reached
    # 60 mm with 0.02 (close to plain L1, which keeps pulling on centimetre errors).
    recon_beta: float = 0.02
    # Extra weight on the joint positions (what MPJPE measures): 3.0 gave 57 mm against 60 mm for 1.0
    # after 1500 steps of the small preset; 2.0 takes most of that without starving the rotations.
    pos_weight: float = 2.0
    # Extra weight on velocities (MoMask puts 0.5 on its explicit-motion term): less jitter.
    vel_weight: float = 0.5
    # Weight of the drift term: L1 between the running sums over the crop of the reconstructed and
    # the true root velocities (layout.trajectory), in normalised units. The ego layout integrates
    # the root from them, so a small bias per frame becomes metres over a minute; the per-frame loss
    # alone gives these 3 of 268 numbers almost no weight (measured: 537 mm root error after 500
    # steps without it, 59 mm root-relative).
    traj_weight: float = 0.2
    # Extra weight on the relation to the partner (layout.relation): person b is placed from them,
    # and their 4 numbers are 1.5 % of the per-frame loss. Measured without it after 500 steps: b
    # placed from the true person a 883 mm off (the pose itself 48 mm root-relative).
    rel_weight: float = 1.0

    def __post_init__(self) -> None:
        positive = ("feature_dim", "width", "res_depth", "dilation_growth", "conv_kernel", "code_dim")
        for name in positive + ("codebook_size", "num_quantizers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TokenizerConfig.{name} must be a positive int, got {value!r}")
        layout_of(self.feature_dim)  # only the widths of known layouts
        if not isinstance(self.down_t, int) or self.down_t < 0:
            raise ValueError(f"TokenizerConfig.down_t must be an int >= 0, got {self.down_t!r}")
        if not isinstance(self.down_kernel, int) or self.down_kernel < 2:
            # A causal stride-2 conv pads kernel - 2 frames on the left; a kernel below 2 would skip frames.
            raise ValueError(f"TokenizerConfig.down_kernel must be an int >= 2, got {self.down_kernel!r}")
        if self.lookahead != 0:
            # A look-ahead would delay every token by that many frames and give the streaming step a
            # second buffer; nothing needs it yet, so it is refused rather than half supported.
            raise ValueError(
                "TokenizerConfig.lookahead must be 0: only strictly causal tokenizers are implemented"
            )
        for name in ("relation_quantizers", "relation_width", "relation_code_dim"):
            value, low = getattr(self, name), int(name != "relation_quantizers")
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"TokenizerConfig.{name} must be an int >= {low}, got {value!r}")
        if self.relation_net not in ("conv", "step"):
            raise ValueError(
                f"TokenizerConfig.relation_net must be 'conv' or 'step', got {self.relation_net!r}"
            )
        if self.relation_quantizers and not layout_of(self.feature_dim).relation:
            raise ValueError(
                f"TokenizerConfig.relation_quantizers needs a layout with relation features (ego), "
                f"got feature_dim {self.feature_dim}"
            )
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"TokenizerConfig.ema_decay must be in (0, 1), got {self.ema_decay}")
        if not 0.0 <= self.quantizer_dropout < 1.0:
            raise ValueError(
                f"TokenizerConfig.quantizer_dropout must be in [0, 1), got {self.quantizer_dropout}"
            )
        if not self.recon_beta > 0.0:
            raise ValueError(f"TokenizerConfig.recon_beta must be > 0, got {self.recon_beta!r}")
        for name in (
            "dead_code_threshold",
            "commitment_beta",
            "pos_weight",
            "vel_weight",
            "traj_weight",
            "rel_weight",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0.0 or value == float("inf"):
                raise ValueError(f"TokenizerConfig.{name} must be a finite number >= 0, got {value!r}")

    @property
    def depths(self) -> int:
        """Codes per token step: D body depths, then R relation depths."""
        return self.num_quantizers + self.relation_quantizers

    @property
    def stride(self) -> int:
        """l: frames per token step."""
        return 2**self.down_t

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        """Rebuild from `to_dict`; unknown AND missing keys are errors.

        A checkpoint must rebuild exactly the model it was trained as, so a missing field is not
        silently filled with today's default (which may have changed), and a typo fails loudly.
        Use `preset(name, **overrides)` to start from a preset with a few fields changed.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        # Checkpoints from before relation codes existed: no relation codes is exactly what they are.
        d = {**BEFORE_RELATION_CODES, **d} if not set(BEFORE_RELATION_CODES) & set(d) else d
        d = {"relation_net": "conv", **d}  # relation codes from before the choice had conv stacks
        missing = sorted(names - set(d))
        if unknown:
            raise ValueError(f"unknown TokenizerConfig keys {unknown}; known: {sorted(names)}")
        if missing:
            raise ValueError(f"TokenizerConfig keys missing: {missing}")
        return cls(**d)


# Named sizes. Parameter counts (encoder + decoder; codebooks are EMA buffers, not parameters) are
# printed by `RQVAE(config).num_params()` and listed in the tokenizer note.
PRESETS: dict[str, TokenizerConfig] = {
    # Unit tests and smoke runs: trains in a minute on a CPU core. A faster EMA and a low dead-code
    # threshold because its runs are a few hundred small batches.
    "tiny": TokenizerConfig(
        width=32,
        res_depth=1,
        code_dim=32,
        codebook_size=64,
        num_quantizers=3,
        ema_decay=0.9,
        dead_code_threshold=0.25,
    ),
    # The default and shipped checkpoint: trained on CPU in ~20 minutes, and its streaming step
    # (encode + decode of one token step of one person) stays under 2 ms on one CPU core.
    "small": TokenizerConfig(),
    # A GPU-trained middle size (batch 256 x 64 frames, as MoMask, hence its dead-code threshold).
    "base": TokenizerConfig(width=384, res_depth=3, code_dim=384, num_quantizers=6, dead_code_threshold=1.0),
    # T2M-GPT / MoMask: width 512, 3 residual blocks per level with dilation growth 3, l = 4,
    # K = 512 codes of dim 512, D = 6 depths (MoMask), EMA 0.99, beta 0.02, dropout 0.2, reset below 1 hit.
    "paper": TokenizerConfig(width=512, res_depth=3, code_dim=512, num_quantizers=6, dead_code_threshold=1.0),
}


def preset(name: str, **overrides: Any) -> TokenizerConfig:
    """The preset `name`, with `overrides` replacing fields (unknown fields raise)."""
    if name not in PRESETS:
        raise ValueError(f"unknown tokenizer preset {name!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(TokenizerConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown TokenizerConfig keys {unknown}; known: {sorted(names)}")
    return dataclasses.replace(PRESETS[name], **overrides)
