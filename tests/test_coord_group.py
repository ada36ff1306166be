"""Groups and the coordination report on the tiny model: shapes, finite values, nobody inside anybody.

The model is a tiny random backbone with the motion vocabulary added and never trained (as in
tests/test_llm_generation.py's eviction test): what it writes is nonsense motion, which is what
the refinement has to cope with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molam_ros.coordination.group import add_person, group_centre, react_to
from molam_ros.coordination.metrics import facing_error_to, penetration
from molam_ros.coordination.report import coordination_report, format_report, main


@pytest.fixture(scope="module")
def untrained(tiny_llm_env: dict[str, Path]) -> Path:
    """A saved, loadable MotionLM checkpoint of the tiny backbone, with the tokenizer's vocabulary."""
    from molam_ros.llm.depth_head import DepthHeadConfig
    from molam_ros.llm.model import MotionLM
    from molam_ros.llm.vocab import MotionVocab
    from molam_ros.tokenizer import PRESETS

    out = tiny_llm_env["root"] / "coord_untrained"
    if not (out / "molam_llm.json").is_file():
        vocab = MotionVocab.from_tokenizer_config(PRESETS["tiny"])
        mlm = MotionLM.create(tiny_llm_env["backbone"], vocab, DepthHeadConfig(width=8, layers=1))
        mlm.save(out, base=tiny_llm_env["backbone"], stage=2, merged=True)
    return out


@pytest.fixture(scope="module")
def tools(untrained: Path, tiny_llm_env: dict[str, Path]) -> tuple[object, object]:
    from molam_ros.llm.generate import Generator, SamplingConfig
    from molam_ros.llm.model import load_motion_lm
    from molam_ros.llm.motion_io import MotionCodec

    generator = Generator(load_motion_lm(untrained), sampling=SamplingConfig(max_steps=8))
    return generator, MotionCodec.from_checkpoint(tiny_llm_env["tokenizer"])


@pytest.fixture(scope="module")
def pair(tiny_llm_env: dict[str, Path]) -> np.ndarray:
    """A recorded two-person clip of the tiny dataset, cropped to 2 s (float32, world frame)."""
    from molam_ros.data.dataset import MotionDataset

    ds = MotionDataset(tiny_llm_env["data"])
    return ds.load(ds.ids("test")[0]).positions[:, :60]


def test_react_to_gives_one_person_of_the_partners_length(tools: tuple, pair: np.ndarray) -> None:
    generator, codec = tools
    new = react_to(generator, codec, pair[0][:58], "wave back")  # 58 frames: not whole 4-frame steps
    assert new.shape == (58, 22, 3) and new.dtype == np.float32 and np.all(np.isfinite(new))
    assert np.array_equal(new[-1], new[-2])  # the part step holds the last decoded pose


def test_add_person_grows_the_group_without_penetration(tools: tuple, pair: np.ndarray) -> None:
    generator, codec = tools
    group = add_person(generator, codec, pair, "joins them", partner=1)
    assert group.shape == (3, *pair.shape[1:]) and np.all(np.isfinite(group))
    assert np.array_equal(group[:2], pair)  # nobody already there moves
    for other in (0, 1):
        assert penetration(group[[other, 2]])["max_mm"] < 1.0
    # a fourth, facing the group's centre
    bigger = add_person(generator, codec, group, "walks up to the group", partner=0, face_group=True)
    assert bigger.shape == (4, *pair.shape[1:]) and np.all(np.isfinite(bigger))
    for other in (0, 1, 2):
        assert penetration(bigger[[other, 3]])["max_mm"] < 1.0
    facing = facing_error_to(bigger[3], group_centre(group))
    assert np.median(facing) < 25.0
    with pytest.raises(ValueError, match="partner"):
        add_person(generator, codec, pair, "x", partner=5)


def test_the_report_runs_on_two_clips(
    untrained: Path, tiny_llm_env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = coordination_report(
        untrained,
        tiny_llm_env["tokenizer"],
        tiny_llm_env["data"],
        clips=2,
        max_steps=6,
        figure=tmp_path / "composition.png",
        progress=False,
    )
    assert report["clips"] == 2 and (tmp_path / "composition.png").stat().st_size > 1000
    assert set(report["summary"]) == {"recorded", "reaction", "text_to_motion"}
    for stages in report["summary"].values():
        assert set(stages) == {"no", "yes"}
        assert stages["yes"]["penetration_max_mm"] < 1.0
        assert all(np.isfinite(v) for row in stages.values() for v in row.values())
    comp = report["composition"]["generated tokens"]
    # Smoothing never makes the join faster than both the raw join and the pieces' own motion (when
    # the raw join is already smaller than the motion inside, the fitted C1 curve may trade a little).
    smoothed = comp["+/-5 frames"]
    assert comp["off"]["joins"] == 1
    assert smoothed["jump_m"] <= max(comp["off"]["jump_m"], smoothed["inside"]) + 1e-6
    text = format_report(report)
    assert "penetration max mm" in text and "max speed at joins" in text
    # the command line: same work, prints the tables, writes the numbers
    out = tmp_path / "report.json"
    args = ["--checkpoint", str(untrained), "--tokenizer", str(tiny_llm_env["tokenizer"])]
    args += ["--data", str(tiny_llm_env["data"]), "--clips", "1", "--max-steps", "4", "--json", str(out)]
    assert main(args) == 0
    assert "| recorded | yes |" in capsys.readouterr().out and out.stat().st_size > 100
