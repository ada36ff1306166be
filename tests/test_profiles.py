"""Output profiles: the shipped ones load with the published names and limits; bad ones fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from molam_ros.motion.skeleton import JOINT_NAMES
from molam_ros.runtime.profiles import (
    ProfileError,
    available_profiles,
    load_profile,
    profile_dirs,
    profile_from_dict,
)

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "config" / "profiles"

H1_NAMES = [
    *(f"left_{j}_joint" for j in ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle")),
    *(f"right_{j}_joint" for j in ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle")),
    "torso_joint",
    *(f"left_{j}_joint" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")),
    *(f"right_{j}_joint" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")),
]
G1_LEG = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")
G1_ARM = (
    "shoulder_pitch",
    "shoulder_roll",
    "shoulder_yaw",
    "elbow",
    "wrist_roll",
    "wrist_pitch",
    "wrist_yaw",
)
G1_NAMES = [
    *(f"left_{j}_joint" for j in G1_LEG),
    *(f"right_{j}_joint" for j in G1_LEG),
    "waist_yaw_joint",
    "waist_roll_joint",
    "waist_pitch_joint",
    *(f"left_{j}_joint" for j in G1_ARM),
    *(f"right_{j}_joint" for j in G1_ARM),
]


def _robot(**overrides: object) -> dict:
    joint = {"name": "j", "smpl": "left_elbow", "axis": "x", "lower": -1.0, "upper": 1.0, "velocity": 2.0}
    data = {"name": "t", "kind": "robot", "joints": [joint]}
    for key, value in overrides.items():
        if key.startswith("joint_"):
            joint[key[len("joint_") :]] = value
        else:
            data[key] = value
    return data


def test_shipped_profiles_are_found_and_load() -> None:
    assert PROFILES in profile_dirs()
    assert {"avatar_smpl", "unitree_h1", "unitree_g1"} <= set(available_profiles())
    for name in ("avatar_smpl", "unitree_h1", "unitree_g1"):
        profile = load_profile(name)
        assert profile.name == name
        assert profile.path == PROFILES / f"{name}.yaml"
    assert load_profile(PROFILES / "unitree_h1.yaml").name == "unitree_h1"  # by path too


def test_unitree_h1_names_and_published_limits() -> None:
    h1 = load_profile("unitree_h1")
    assert h1.kind == "robot" and h1.joint_names == H1_NAMES and h1.num_joints == 19
    by = {j.name: j for j in h1.joints}
    # Spot checks against h1.urdf <limit lower upper velocity>.
    assert (by["left_knee_joint"].lower, by["left_knee_joint"].upper, by["left_knee_joint"].velocity) == (
        -0.26,
        2.05,
        14.0,
    )
    assert (by["left_shoulder_roll_joint"].lower, by["left_shoulder_roll_joint"].upper) == (-0.34, 3.11)
    assert (by["right_shoulder_roll_joint"].lower, by["right_shoulder_roll_joint"].upper) == (-3.11, 0.34)
    assert (by["right_shoulder_yaw_joint"].lower, by["right_shoulder_yaw_joint"].upper) == (-4.45, 1.3)
    assert by["torso_joint"].smpl == ("spine1", "spine2", "spine3")
    assert by["left_hip_pitch_joint"].neutral == -0.4 and by["left_knee_joint"].neutral == 0.8
    assert h1.upper_body_only and h1.leg_mask.sum() == 10


def test_unitree_g1_names_and_published_limits() -> None:
    g1 = load_profile("unitree_g1")
    assert g1.joint_names == G1_NAMES and g1.num_joints == 29
    by = {j.name: j for j in g1.joints}
    assert (by["left_hip_roll_joint"].lower, by["left_hip_roll_joint"].upper) == (-0.5236, 2.9671)
    assert (by["right_hip_roll_joint"].lower, by["right_hip_roll_joint"].upper) == (-2.9671, 0.5236)
    assert (by["left_wrist_pitch_joint"].upper, by["left_wrist_pitch_joint"].velocity) == (1.614429558, 22.0)
    assert (by["waist_roll_joint"].lower, by["waist_roll_joint"].upper) == (-0.52, 0.52)
    assert g1.leg_mask.sum() == 12


@pytest.mark.parametrize("name", ["unitree_h1", "unitree_g1"])
def test_robot_profiles_are_consistent(name: str) -> None:
    p = load_profile(name)
    assert np.all(p.lower < p.upper) and np.all(p.velocity > 0)
    assert np.all((p.lower <= p.neutral) & (p.neutral <= p.upper))
    # Left and right mirror each other: same axes, roll and yaw limits mirrored (a symmetric range
    # is its own mirror), pitch limits equal.
    by = {j.name: j for j in p.joints}
    for j in p.joints:
        if j.name.startswith("left_"):
            r = by["right_" + j.name[len("left_") :]]
            assert r.axis == j.axis and r.sign == j.sign
            assert r.smpl == tuple(s.replace("left_", "right_") for s in j.smpl)
            if "roll" in j.name or "yaw" in j.name:
                assert (r.lower, r.upper) == (-j.upper, -j.lower), j.name
            else:
                assert (r.lower, r.upper) == (j.lower, j.upper), j.name


def test_avatar_profile() -> None:
    avatar = load_profile("avatar_smpl")
    assert avatar.kind == "avatar" and not avatar.is_robot
    assert avatar.joint_names == list(JOINT_NAMES) and avatar.root_translation
    assert avatar.neutral_root == (0.0, 0.95, 0.0)
    renamed = profile_from_dict(
        {"name": "rig", "kind": "avatar", "joints": [{"name": "Hips", "smpl": "pelvis"}, {"smpl": "head"}]}
    )
    assert renamed.bones == (("Hips", "pelvis"), ("head", "head"))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (_robot(colour="red"), "<top level>", "unknown key"),
        (_robot(joint_stiffness=3), "joints[0] (j)", "unknown key"),
        (_robot(kind="drone"), "kind", "must be one of"),
        (_robot(joints=[]), "joints", "non-empty"),
        (_robot(joint_lower=2.0), "joints[0] (j).lower", "must be < upper"),
        (_robot(joint_velocity=0), "joints[0] (j).velocity", "> 0"),
        (_robot(joint_velocity=float("nan")), "joints[0] (j).velocity", "finite"),
        (_robot(joint_neutral=1.5), "joints[0] (j).neutral", "outside the limits"),
        (_robot(joint_upper="1"), "joints[0] (j).upper", "must be a number"),
        (_robot(joint_smpl="left_elbo"), "joints[0] (j).smpl", "not an SMPL joint"),
        (_robot(joint_smpl="pelvis"), "joints[0] (j).smpl", "root"),
        (_robot(joint_smpl=["left_collar", "left_elbow"]), "joints[0] (j).smpl", "parent-to-child"),
        (_robot(joint_axis="w"), "joints[0] (j).axis", "one of"),
        (_robot(joint_sign=2), "joints[0] (j).sign", "1 or -1"),
        (_robot(zero_pose_deg={"left_elbo": [0, 0, 0]}), "zero_pose_deg.left_elbo", "not an SMPL joint"),
        (_robot(zero_pose_deg={"left_elbow": [0, 0]}), "zero_pose_deg.left_elbow", "rotation vector"),
        (_robot(upper_body_only="yes"), "upper_body_only", "true or false"),
    ],
)
def test_validation_names_the_field(data: dict, field: str, message: str) -> None:
    with pytest.raises(ProfileError) as e:
        profile_from_dict(data, where="bad.yaml")
    assert str(e.value).startswith(f"bad.yaml: {field}: "), str(e.value)
    assert message in str(e.value)


def test_validation_of_drives() -> None:
    base = {"smpl": "left_hip", "axis": "x", "lower": -1, "upper": 1, "velocity": 1}
    joints = [dict(base, name=f"j{i}", axis=a) for i, a in enumerate("xyz")]
    profile_from_dict({"name": "t", "kind": "robot", "joints": joints})  # three distinct axes: fine
    with pytest.raises(ProfileError, match="at most 3"):
        profile_from_dict(
            {"name": "t", "kind": "robot", "joints": [*joints, dict(base, name="j3", axis="x")]}
        )
    with pytest.raises(ProfileError, match="distinct axes"):
        profile_from_dict({"name": "t", "kind": "robot", "joints": [joints[0], dict(joints[1], axis="x")]})
    with pytest.raises(ProfileError, match="duplicate joint names"):
        profile_from_dict(
            {"name": "t", "kind": "robot", "joints": [joints[0], dict(joints[1], name="j0", smpl="neck")]}
        )
    overlapping = [dict(base, name="a", smpl=["spine1", "spine2"]), dict(base, name="b", smpl="spine2")]
    with pytest.raises(ProfileError, match="already part of the drive"):
        profile_from_dict({"name": "t", "kind": "robot", "joints": overlapping})


def test_file_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "my_robot.yaml"
    bad.write_text(yaml.safe_dump(_robot(joint_lower=5.0)))
    with pytest.raises(ProfileError, match=r"my_robot\.yaml: joints\[0\] \(j\)\.lower"):
        load_profile(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml: not valid YAML"):
        load_profile(broken)
    with pytest.raises(ProfileError, match="unknown profile 'no_such_robot'.*unitree_h1"):
        load_profile("no_such_robot")
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(tmp_path / "missing.yaml")
    # Extra directories come first.
    good = tmp_path / "extra" / "unitree_h1.yaml"
    good.parent.mkdir()
    good.write_text(yaml.safe_dump(dict(_robot(), name="override")))
    monkeypatch.setenv("MOLAM_PROFILE_PATH", str(good.parent))
    assert load_profile("unitree_h1").name == "override"


def test_readme_documents_every_key_and_its_example_loads() -> None:
    readme = (PROFILES / "README.md").read_text()
    from molam_ros.runtime import kinematics
    from molam_ros.runtime import profiles as mod

    keys = set().union(
        *mod._TOP_KEYS.values(),
        mod._ROBOT_JOINT_KEYS,
        mod._AVATAR_JOINT_KEYS,
        kinematics._KEYS,
        kinematics._LINK_KEYS,
    )
    undocumented = [k for k in keys if f"`{k}`" not in readme]
    assert not undocumented, f"config/profiles/README.md does not document {undocumented}"
    example = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)[-1]
    demo = profile_from_dict(yaml.safe_load(example), where="README example")
    assert demo.joint_names == ["shoulder_pitch", "elbow"]


def test_setup_installs_the_profiles() -> None:
    assert 'glob("config/profiles/*.yaml")' in (REPO / "ros2_ws/src/molam_ros/setup.py").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda k: k["links"][1].update(parent="nowhere"),
            r"links\[1\] \(\w+\)\.parent: 'nowhere' is not a link listed",
        ),
        (lambda k: k["links"][1].pop("joint"), r"every profile joint must move one link: missing \['\w+'\]"),
        (lambda k: k["links"][1].update(axis=[0, 1, 1]), r"\.axis: must be a unit vector"),
        (lambda k: k["links"][1].update(mass=0), r"\.mass: must be > 0 kg"),
        (
            lambda k: k["links"][1].update(capsule=[0, 0, 0, 0, 0, 1]),
            r"\.capsule: must be a list of 7 numbers",
        ),
        (
            lambda k: k.update(sites={"left_hand": {"link": "pelvis"}}),
            r"sites\.left_hand: is not an SMPL joint",
        ),
        (lambda k: k.update(base_height=-1), r"base_height: must be > 0 m"),
    ],
)
def test_kinematics_validation_names_the_field(change, message: str) -> None:
    data = yaml.safe_load((PROFILES / "unitree_h1.yaml").read_text())
    change(data["kinematics"])
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(data, where="h1")


@pytest.mark.parametrize("name", ["unitree_g1", "unitree_h1"])
def test_shipped_chains_move_every_joint_and_match_the_urdf_facts(name: str) -> None:
    profile = load_profile(name)
    kin = profile.kinematics
    assert kin is not None and kin.source.startswith("unitree_ros robots/")
    assert sorted(link.joint for link in kin.links if link.joint) == sorted(profile.joint_names)
    # Facts read from the URDFs at the cited commits (unitree_ros g1_29dof.urdf, h1.urdf).
    facts = {
        "unitree_g1": ("left_shoulder_pitch_link", (0.0039563, 0.10022, 0.23778), 0.27931, 0.718),
        "unitree_h1": ("left_shoulder_pitch_link", (0.0055, 0.15535, 0.42999), 0.43633, 1.142),
    }
    link, pos, roll, mass = facts[name]
    spec = kin.link(link)
    assert spec.pos == pos and spec.rpy[0] == roll and spec.mass == mass and spec.axis == (0.0, 1.0, 0.0)
    assert {s for s, _, _ in kin.sites} >= {"left_wrist", "right_wrist", "left_elbow", "right_elbow", "head"}
