"""Shared pytest set-up: keep ROS 2 logs and DDS discovery inside the test run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _ros_isolation(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Logs to a temp dir, discovery limited to this machine, a domain id per test session.

    Several CI runs or developers on one machine must not hear each other's test topics.
    """
    os.environ.setdefault("ROS_LOG_DIR", str(tmp_path_factory.mktemp("ros_log")))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def tiny_llm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small generator dataset (with edit variants), a tiny tokenizer and a tiny random LLaMA.

    Shared by the LLM tests: everything the training stages and generation touch, in seconds.
    """
    from molam_ros.data.dataset import write_dataset
    from molam_ros.data.edit_variants import with_edit_variants
    from molam_ros.data.synth import generate_dataset
    from molam_ros.llm.backbone import make_tiny_backbone
    from molam_ros.tokenizer import PRESETS, TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_llm")
    clips = with_edit_variants(generate_dataset(20, 0), 0.5, seed=0, count=20)
    write_dataset(root / "data", clips, progress=False)
    fast = TrainConfig(steps=30, batch_size=8, window=32, warmup_steps=5, eval_every=0, checkpoint_every=0)
    train(root / "data", root / "tok", model_config=PRESETS["tiny"], train_config=fast, progress=False)
    make_tiny_backbone(root / "backbone")
    return {"data": root / "data", "tokenizer": root / "tok", "backbone": root / "backbone", "root": root}


@pytest.fixture(scope="session")
def tiny_models(tiny_llm_env: dict[str, Path]) -> Path:
    """A models root in the cache's layout (tokenizer/small, llm/stage2) holding the tiny, untrained
    tokenizer and LLM: what the reaction node, the bench and the demo read with `model_dir`."""
    import shutil

    from molam_ros.llm.depth_head import DepthHeadConfig
    from molam_ros.llm.model import MotionLM
    from molam_ros.llm.vocab import MotionVocab
    from molam_ros.tokenizer.config import TokenizerConfig
    from molam_ros.tokenizer.rqvae import read_checkpoint_info

    root = tiny_llm_env["root"] / "models"
    shutil.copytree(tiny_llm_env["tokenizer"], root / "tokenizer" / "small")
    config = TokenizerConfig.from_dict(read_checkpoint_info(tiny_llm_env["tokenizer"])["config"])
    vocab = MotionVocab.from_tokenizer_config(config)
    mlm = MotionLM.create(tiny_llm_env["backbone"], vocab, DepthHeadConfig(width=16, layers=1))
    mlm.info = {"tokenizer_checkpoint": str(root / "tokenizer" / "small")}
    mlm.save(root / "llm" / "stage2", base=tiny_llm_env["backbone"], stage=2, merged=True)
    return root


@pytest.fixture(scope="session")
def tiny_parts(tiny_llm_env: dict[str, Path]) -> tuple:
    """The tiny LLM (random, depth head of width 16) and its tokenizer's torch engine: what the
    streaming pipeline's tests run on."""
    from molam_ros.llm.depth_head import DepthHeadConfig
    from molam_ros.llm.model import MotionLM
    from molam_ros.llm.vocab import MotionVocab
    from molam_ros.tokenizer.engines import TorchEngine

    engine = TorchEngine(tiny_llm_env["tokenizer"])
    vocab = MotionVocab(codebook_size=engine.model.config.codebook_size, depth=engine.depths)
    mlm = MotionLM.create(tiny_llm_env["backbone"], vocab, DepthHeadConfig(width=16, layers=1)).eval()
    return mlm, engine


@pytest.fixture(scope="session")
def generator_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 generator clips (seed 0) as a molam dataset: what the tokenizer training tests read
    (never written to)."""
    from molam_ros.data.dataset import write_dataset
    from molam_ros.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("generator_clips")
    write_dataset(root, generate_dataset(12, 0), progress=False)
    return root
