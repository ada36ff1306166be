"""What the reaction node runs, built from its parameters without ROS.

The node (`ros/reaction_node.py`) keeps to messages, parameters and QoS; loading the models, pairing
the LLM with the tokenizer it was trained on, and wiring the coordinator and the one guarded command
path are core work, testable without rclpy, so they live here. `p` is the node's parameter dict
(names and defaults in `ros/reaction_node.py`'s PARAMETERS).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from molam_ros.agent.commands import CommandRouter

log = logging.getLogger(__name__)

# Who writes the live reaction (the node's `reactor`): the motion-language model's depth head, the
# small reactor, or the LLM reactor (SmolLM2's first layers with LoRA, llm/reactor_trunk.py). The
# describer answers what is happening; the full LLM, where the cache has it, the rest of the text.
REACTORS = ("llm", "small", "llm_reactor")


def _model_paths(p: dict[str, Any]) -> tuple[Path, Path, Path]:
    """(tokenizer, export, llm) directories from the parameters and the cache layout."""
    from molam_ros.paths import default_export_dir, default_llm_dir, default_tokenizer_dir

    root = p["model_dir"] or None
    tok = Path(p["tokenizer_dir"]) if p["tokenizer_dir"] else default_tokenizer_dir(root)
    export = Path(p["export_dir"]) if p["export_dir"] else default_export_dir(root)
    llm = Path(p["llm_dir"]) if p["llm_dir"] else default_llm_dir(root)
    return tok, export, llm


def build_pipeline(p: dict[str, Any]) -> tuple[Any, str]:
    """The ReactionPipeline for a parameter dict, and the tokenizer engine actually in use."""
    import copy

    import torch

    from molam_ros.llm.model import load_motion_lm
    from molam_ros.llm.quantize import quantize
    from molam_ros.llm.streaming import StreamingConfig
    from molam_ros.runtime.pipeline import PipelineConfig, ReactionPipeline
    from molam_ros.runtime.pose_buffer import PoseBufferConfig
    from molam_ros.runtime.profiles import load_profile
    from molam_ros.runtime.reactor_start import parse_start
    from molam_ros.runtime.safety import SafetyConfig
    from molam_ros.tokenizer.engines import EngineConfig, create_engine
    from molam_ros.tokenizer.rqvae import check_pairing

    if p["instruction"]:  # the start-up instruction reaches the model too: the same guard
        from molam_ros.agent.guard import check_request

        refusal = check_request(p["instruction"], int(p["max_command_length"]))
        if refusal is not None:
            raise ValueError(f"instruction parameter refused: {refusal.reason}")
    if p["pose_up_axis"] not in ("y", "z"):
        raise ValueError(f"pose_up_axis must be 'y' or 'z', got {p['pose_up_axis']!r}")
    if int(p["torch_threads"]) > 0:
        torch.set_num_threads(int(p["torch_threads"]))
    kind = p.get("reactor", "llm_reactor")
    if kind not in REACTORS:
        raise ValueError(f"reactor must be one of {', '.join(REACTORS)}; got {kind!r}")
    tok, export, llm = _model_paths(p)
    if not tok.is_dir():
        raise FileNotFoundError(f"tokenizer checkpoint {tok} does not exist; train it (make tokenizer)")
    # The full LLM is needed for the LLM's own reaction; with another reactor, a node without one
    # reacts and answers "what is happening" (the describer) and says what else needs it.
    has_llm = (llm / "molam_llm.json").is_file() or (kind == "llm" and llm.is_dir())
    if kind == "llm" and not has_llm:
        raise FileNotFoundError(f"LLM checkpoint {llm} does not exist; train it (make llm)")
    engine = create_engine(
        EngineConfig(backend=p["engine"], checkpoint=str(tok), export_dir=str(export), device=p["device"])
    )
    text_mlm = mlm = None
    if has_llm:
        text_mlm = mlm = load_motion_lm(llm, device=p["device"])
        check_pairing(text_mlm.info.get("tokenizer"), tok, f"the LLM {llm}")
    else:
        log.warning(
            "no motion-language model at %s: the %s reacts and the describer answers what is happening; "
            "why-questions and plans need it (make llm)",
            llm,
            kind,
        )
    if (
        mlm is not None
        and kind == "llm"
        and str(p["device"]).startswith("cpu")
        and p["llm_quantization"] != "none"
    ):
        # The step on int8 weights, text answers on the float model (llm/quantize.py says why).
        mlm = quantize(copy.deepcopy(text_mlm), p["llm_quantization"])
    config = PipelineConfig(
        buffer=PoseBufferConfig(z_up=p["pose_up_axis"] == "z"),
        streaming=StreamingConfig(
            window_steps=p["window_steps"],
            keep_steps=p["keep_steps"],
            temperature=p["temperature"],
            top_k=p["top_k"],
            seed=p["seed"],
        ),
        safety=SafetyConfig(timeout=p["watchdog_timeout"], ease_time=p["neutral_ease_time"]),
        instruction=p["instruction"] or None,
        start=parse_start(p.get("start_position", "front"), float(p.get("start_distance", 1.8))),
    )
    reactor = None if kind == "llm" else _small_reactor(p, tok, engine)
    profile = load_profile(p["profile"])
    pipeline = ReactionPipeline(
        mlm,
        engine,
        profile,
        config,
        text_mlm=text_mlm,
        reactor=reactor,
        completer=build_completer(p),
        guard=build_guard(p, profile),
        describer=build_describer(p, tok),
    )
    return pipeline, type(engine).__name__


def _small_reactor(p: dict[str, Any], tok: Path, engine: Any) -> Any:
    """The small reactor named by the parameters, paired with the tokenizer in use, with the shipped
    sentence encoder for its instructions (the same encoder the command classifier uses)."""
    from molam_ros.agent.encoder import EncoderUnavailableError, shared_encoder
    from molam_ros.llm.reactor_weights import load_small_reactor, reactor_settings
    from molam_ros.llm.small_streaming import SmallStreamingReactor
    from molam_ros.paths import default_reactor_dir, shipped_llm_reactor_dir
    from molam_ros.tokenizer.rqvae import check_pairing

    if p.get("reactor_dir"):
        path = Path(p["reactor_dir"])
    elif p["reactor"] == "llm_reactor":
        path = shipped_llm_reactor_dir()
    else:
        path = default_reactor_dir(p["model_dir"] or None)
    net, info = load_small_reactor(path)
    check_pairing(info.get("tokenizer"), tok, f"the small reactor {path}")
    try:
        embed = shared_encoder().encode
    except EncoderUnavailableError:
        embed = None  # reacts unprompted; an instruction is refused with a clear reason
    return SmallStreamingReactor(net, engine, embed=embed, **reactor_settings(info))


def build_teleop_pipeline(p: dict[str, Any]) -> tuple[Any, str]:
    """The TeleopPipeline for a parameter dict (reaction_node's `mode: teleop`): no model is loaded."""
    from molam_ros.runtime.one_euro import OneEuroConfig
    from molam_ros.runtime.profiles import load_profile
    from molam_ros.runtime.safety import SafetyConfig
    from molam_ros.runtime.teleop import TeleopConfig, TeleopPipeline

    if p["pose_up_axis"] not in ("y", "z"):
        raise ValueError(f"pose_up_axis must be 'y' or 'z', got {p['pose_up_axis']!r}")
    if not p["person_id"]:
        raise ValueError("mode teleop needs person_id: the one operator the robot follows")
    cutoff = float(p["teleop_filter_min_cutoff"])
    config = TeleopConfig(
        person_id=p["person_id"],
        reorder_window=float(p["teleop_reorder_window"]),
        reorder_window_max=max(float(p["teleop_reorder_window"]), float(p["teleop_reorder_window_max"])),
        reorder_quantile=float(p["teleop_reorder_quantile"]),
        filter=OneEuroConfig(min_cutoff=cutoff, beta=float(p["teleop_filter_beta"])) if cutoff > 0 else None,
        safety=SafetyConfig(
            timeout=p["watchdog_timeout"],
            ease_time=p["neutral_ease_time"],
            resume_time=p["teleop_blend_time"],
        ),
    )
    profile = load_profile(p["profile"])
    ik = None
    if p["teleop_retarget"] == "ik":
        try:  # optional extra (mujoco, mink): one clear line instead of a traceback
            from molam_ros.sim.ik_retarget import IKRetargeter
        except ImportError as e:
            raise RuntimeError(f"teleop_retarget ik needs pip install 'molam_ros[sim]' ({e})") from e
        ik = IKRetargeter(profile)
    elif p["teleop_retarget"] != "axis":
        raise ValueError(f"teleop_retarget must be 'axis' or 'ik', got {p['teleop_retarget']!r}")
    pipeline = TeleopPipeline(profile, config, ik=ik, guard=build_guard(p, profile))
    if p["pose_up_axis"] == "z":
        pipeline.buffer = config.make_buffer(z_up=True)
    return pipeline, "none (teleoperation)"


def build_guard(p: dict[str, Any], profile: Any) -> Any:
    """The safety filter's self-collision guard (sim/collision_guard.py) the `collision_guard`
    parameter asks for: `auto` builds it where the optional MuJoCo extra is installed and the
    profile has a kinematic model, `on` insists (an error without them), `off` none."""
    choice = str(p.get("collision_guard", "auto"))
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"collision_guard must be auto, on or off, got {choice!r}")
    if choice == "off" or not profile.is_robot:
        return None
    if profile.kinematics is None:
        if choice == "on":
            raise ValueError(f"collision_guard on: profile {profile.name!r} has no kinematics: section")
        return None
    try:  # optional extra (mujoco, mink)
        from molam_ros.sim.collision_guard import CollisionGuard, CollisionGuardConfig
    except ImportError as e:
        if choice == "on":
            raise RuntimeError(f"collision_guard on needs pip install 'molam_ros[sim]' ({e})") from e
        return None
    clearance = float(p.get("collision_clearance", 0.03))
    lookahead = float(p.get("collision_lookahead", CollisionGuardConfig.lookahead))
    detection = max(CollisionGuardConfig.detection_distance, 3.0 * clearance)
    return CollisionGuard(
        profile,
        CollisionGuardConfig(clearance=clearance, detection_distance=detection, lookahead=lookahead),
    )


def build_completer(p: dict[str, Any]) -> Any:
    """The sparse-pose completer the parameters ask for (`completion_dir`: empty = the shipped
    model, `none` = off), or None; a named directory that is not a checkpoint is an error."""
    from molam_ros.completion.live import LiveCompletionConfig, SparseCompleter
    from molam_ros.completion.model import load_checkpoint
    from molam_ros.paths import shipped_completion_dir

    choice = str(p.get("completion_dir", ""))
    if choice.lower() == "none":
        return None
    path = Path(choice) if choice else shipped_completion_dir()
    if not choice and not (path / "config.json").is_file():
        return None  # a checkout without the shipped model: full poses only
    config = LiveCompletionConfig(floor_height=float(p.get("floor_height", 0.0)))
    return SparseCompleter(load_checkpoint(path), config)


def _chosen_model(
    p: dict[str, Any], key: str, shipped: Path, tok: Path, what: str, llm_does: str
) -> Path | None:
    """The model directory parameter `key` names (empty: `shipped`; none: None, the LLM does it),
    checked against the tokenizer in use. A named one that is missing or does not pair is an error;
    the shipped one, missing (a checkout without it) or next to a tokenizer the user trained, is
    None, said in the log."""
    from molam_ros.tokenizer.rqvae import CheckpointError, check_pairing

    choice = str(p.get(key, ""))
    if choice.lower() == "none":
        return None
    path = Path(choice) if choice else shipped
    if not (path / "config.json").is_file():
        if choice:
            raise FileNotFoundError(f"{key} {path} holds no {what}")
        return None
    try:
        check_pairing(json.loads((path / "config.json").read_text()).get("tokenizer"), tok, str(path))
    except CheckpointError as e:
        if choice:
            raise
        log.warning("%s; the LLM %s instead", e, llm_does)
        return None
    return path


def build_describer(p: dict[str, Any], tok: Path) -> Any:
    """What answers "what is happening" (`describer_dir`: empty = the shipped describer, llm/describer.py;
    none: the LLM), as (2, L, D) codes -> caption, or None for the LLM.

    The pairing with the tokenizer in use is checked here, at start-up; the weights (SmolLM2's first
    layers) load on the first question, off the step thread. A named describer that does not pair is
    an error; the shipped one, next to a tokenizer the user trained, is skipped with a warning."""
    from molam_ros.paths import shipped_describer_dir

    path = _chosen_model(
        p, "describer_dir", shipped_describer_dir(), tok, "describer (molam describer train)", "answers"
    )
    if path is None:
        return None
    loaded: list[Any] = []
    lock = threading.Lock()

    def describe(codes: Any) -> str:
        with lock:
            if not loaded:
                from molam_ros.llm.describer import load_describer

                loaded.append(load_describer(path)[0])
        return loaded[0].caption(codes)

    return describe


def build_text_to_pair(p: dict[str, Any], tok: Path) -> Any:
    """What writes the motion of a plan's generate steps (`t2m_actor_dir`: empty = the shipped actor
    generator with the shipped LLM reactor, llm/pair_generator.py; none: the LLM), as (caption,
    steps or None) -> (2, L, D) codes, or None for the LLM. The LLM's own text-to-motion is
    recognised 0 of 16 times on this CPU, the actor generator 39 of 100 (README).

    Its own reactor and engine, not the pipeline's: generating must not disturb the live reaction's
    state. A shipped model next to a tokenizer the user trained is skipped with a warning."""
    from molam_ros.paths import shipped_llm_reactor_dir, shipped_t2m_actor_dir

    llm_does = "writes generated motion"
    what = "actor generator (molam t2m train)"
    actor_dir = _chosen_model(p, "t2m_actor_dir", shipped_t2m_actor_dir(), tok, what, llm_does)
    if actor_dir is None:
        return None
    # its partner: the shipped LLM reactor (no parameter names another)
    reactor_dir = _chosen_model({}, "llm_reactor", shipped_llm_reactor_dir(), tok, "LLM reactor", llm_does)
    if reactor_dir is None:
        return None
    loaded: dict[str, Any] = {}
    lock = threading.Lock()

    def text_to_pair(caption: str, steps: int | None) -> Any:
        from molam_ros.llm.pair_generator import PairConfig, generate_pair_codes

        with lock:
            if not loaded:
                from molam_ros.agent.encoder import shared_encoder
                from molam_ros.llm.reactor_ship import streaming_reactors
                from molam_ros.tokenizer.engines import TorchEngine

                engine = TorchEngine(tok, threads=1)
                embed = shared_encoder().encode
                loaded["engine"] = engine
                loaded["actor"] = streaming_reactors([actor_dir], engine, embed, tokenizer=tok)[
                    actor_dir.name
                ]
                loaded["reactor"] = streaming_reactors([reactor_dir], engine, None, tokenizer=tok)[
                    reactor_dir.name
                ]
            cfg = PairConfig() if steps is None else PairConfig(steps=max(2, int(steps)))
            _, codes = generate_pair_codes(
                loaded["actor"], loaded["reactor"], loaded["engine"], caption or None, cfg
            )
            return codes

    return text_to_pair


def build_coordinator_for(
    pipeline: Any, config_path: str | None, *, params: dict[str, Any] | None = None
) -> Any:
    """The coordinator of a running pipeline: its float model for quality, its tokenizer engine to
    decode, and the partner's recent codes as the plans' `live` motion; with the node's `params`,
    generate steps come from the actor generator where it is shipped (`build_text_to_pair`)."""
    from molam_ros.agent.config import load_config
    from molam_ros.agent.coordinator import build_coordinator
    from molam_ros.llm.motion_io import MotionCodec

    if pipeline.text_mlm is None:
        raise ValueError("plans need the full motion-language model, which this node runs without (make llm)")

    def live() -> Any:
        recent = pipeline.recent_motion()
        return None if recent is None else recent[0]

    return build_coordinator(
        load_config(config_path),
        pipeline.text_mlm,
        MotionCodec(pipeline.engine),
        live_codes=live,
        describer=pipeline.describer,
        text_to_pair=None if params is None else build_text_to_pair(params, _model_paths(params)[0]),
    )


def make_router(pipeline: Any, worker: Any, reply: Any, p: dict[str, Any]) -> CommandRouter:
    """The node's one command path (agent/commands.py): the guard and the classifier in front of
    the pipeline's instruction and the worker's questions and plans."""
    from molam_ros.agent.intent import IntentClassifier
    from molam_ros.agent.memory import PlanContext
    from molam_ros.agent.rules_planner import RulesPlanner, preload_meaning

    def instruct(text: str | None) -> str | None:
        return pipeline.command(text)

    def context() -> PlanContext:
        return PlanContext(live=pipeline.recent_motion(1) is not None)

    # The sentence encoder loads in the background (seconds on a busy CPU): the node steps at once, and
    # its first commands are classified by the rules alone until the encoder is there.
    preload_meaning()
    classifier = IntentClassifier(RulesPlanner(meaning="background"), max_chars=int(p["max_command_length"]))
    return CommandRouter(classifier, instruct, worker, reply, plans=bool(p["plans"]), context=context)
