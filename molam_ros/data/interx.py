"""Inter-X (Xu et al., CVPR 2024) two-person clips, read from its published layout.

Layout (the unpacked motions.zip / texts.zip and the annots and splits folders)::

    <root>/motions/<name>/P1.npz, P2.npz   SMPL-X parameters at 120 fps:
        root_orient (T, 3), pose_body (T, 63) or (T, 21, 3), pose_lhand / pose_rhand (T, 45) or
        (T, 15, 3), trans (T, 3), betas (1 or T, 10 or 16), gender (a string array)
    <root>/texts/<name>.txt                captions, one per line
    <root>/annots/interaction_order.pkl    dict name -> 0 (P1 acts first) or 1 (P2 acts first)
    <root>/splits/{train,val,test}.txt     names, one per line

Joint positions are not stored: they come from the SMPL-X body model, which the user must download
under its own licence (https://smpl-x.is.tue.mpg.de, "SMPL-X v1.1 (NPZ+PKL)") and point us at with
`model_dir` (a folder holding `smplx/SMPLX_NEUTRAL.npz`, or the `smplx` folder itself). It is run
with the `smplx` package, gender from each file unless overridden, and the first 22 of its joints
are the SMPL body joints. Hands, jaw and eyes do not move those 22 joints.

Up axis: Y. Inter-X's own preprocessing (`preprocess/1_prepare_data.py`) puts the body on the
ground by shifting `trans[:, 1]` by the lowest joint's y, and its viewer (aitviewer's SMPLSequence,
z_up=False) shows the data upright, so the world is Y up. `up_axis="z"` is accepted for copies that
were converted to the AMASS Z-up convention; it applies the proper rotation (x, y, z) -> (x, z, -y).

The clip is resampled 120 -> 30 fps, put on the floor (lowest joint of both people at y=0), and
`local_quats` are filled from the SMPL-X root and body rotations, which are exactly consistent with
the regressed joints (forward kinematics with the body model's own offsets reproduces them).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.data._files import check_finite, floor_offset, read_lines, read_split, require_file
from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.errors import BodyModelNotFoundError, DatasetFormatError
from molam_ros.motion.resample import resample_positions, resample_quats
from molam_ros.motion.rotations import axis_angle_to_quat, matrix_to_quat, quat_mul, quat_normalize
from molam_ros.motion.skeleton import NUM_JOINTS

SOURCE_FPS = 120.0
SPLITS = ("train", "val", "test", "all")
GENDERS = ("neutral", "male", "female")
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
MODEL_HELP = (
    "Inter-X stores SMPL-X parameters, and joint positions need the SMPL-X body model, which cannot be "
    "shipped: register at https://smpl-x.is.tue.mpg.de, download 'SMPL-X v1.1 (NPZ+PKL)', unpack it and "
    "pass the folder that contains smplx/SMPLX_NEUTRAL.npz (e.g. models/) as model_dir."
)


def find_smplx_model(model_dir: str | Path, gender: str = "neutral") -> Path:
    """Path of SMPLX_<GENDER>.npz (or .pkl) under `model_dir`, `model_dir/smplx`, or the file itself."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        return model_dir
    name = f"SMPLX_{gender.upper()}"
    for folder in (model_dir / "smplx", model_dir):
        for ext in ("npz", "pkl"):
            candidate = folder / f"{name}.{ext}"
            if candidate.is_file():
                return candidate
    raise BodyModelNotFoundError(
        f"SMPL-X model not found: expected {model_dir / 'smplx' / (name + '.npz')} (or .pkl). {MODEL_HELP}"
    )


class SMPLXJoints:
    """The 22 SMPL body joints of SMPL-X bodies, one cached `smplx` model per gender and shape size.

    torch and smplx are imported here, not at module import, so the rest of molam_ros (and the
    other loaders) work without them.
    """

    def __init__(self, model_dir: str | Path, chunk: int = 2048) -> None:
        self.model_dir = Path(model_dir)
        self.chunk = chunk
        self._models: dict[tuple[Path, int], Any] = {}

    def model(self, gender: str, num_betas: int) -> Any:
        import smplx

        path = find_smplx_model(self.model_dir, gender)
        key = (path, num_betas)
        if key not in self._models:
            try:
                self._models[key] = smplx.create(
                    str(path),
                    model_type="smplx",
                    gender=gender,
                    use_pca=False,
                    num_betas=num_betas,
                    ext=path.suffix[1:],
                ).eval()
            except Exception as exc:  # a corrupt or wrong model file: say which one
                raise DatasetFormatError(path, f"cannot load as an SMPL-X model ({exc})") from exc
        return self._models[key]

    def __call__(self, params: dict[str, np.ndarray], gender: str) -> np.ndarray:
        """(T, 22, 3) joint positions in the model's world (translation applied)."""
        import torch

        t = params["root_orient"].shape[0]
        betas = params["betas"]
        model = self.model(gender, betas.shape[-1])
        out = np.empty((t, NUM_JOINTS, 3), dtype=np.float32)
        n_expr = int(model.num_expression_coeffs)
        with torch.no_grad():
            for a in range(0, t, self.chunk):
                b = min(a + self.chunk, t)
                n = b - a

                def f(x: np.ndarray) -> torch.Tensor:
                    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)

                beta = betas[a:b] if betas.shape[0] == t else np.repeat(betas[:1], n, axis=0)
                res = model(
                    betas=f(beta),
                    global_orient=f(params["root_orient"][a:b]),
                    body_pose=f(params["pose_body"][a:b]),
                    left_hand_pose=f(params["pose_lhand"][a:b]),
                    right_hand_pose=f(params["pose_rhand"][a:b]),
                    transl=f(params["trans"][a:b]),
                    jaw_pose=torch.zeros(n, 3),
                    leye_pose=torch.zeros(n, 3),
                    reye_pose=torch.zeros(n, 3),
                    expression=torch.zeros(n, n_expr),
                )
                out[a:b] = res.joints[:, :NUM_JOINTS].numpy()
        return out


def load_params(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Check and normalise one P1/P2.npz: arrays reshaped to (T, k), betas to (1 or T, n)."""
    require_file(path, "SMPL-X parameter file")
    try:
        with np.load(path, allow_pickle=True) as data:
            raw = {k: data[k] for k in data.files}
    except Exception as exc:
        raise DatasetFormatError(path, f"cannot read as .npz ({exc})") from exc
    need = {"root_orient": 3, "pose_body": 63, "pose_lhand": 45, "pose_rhand": 45, "trans": 3}
    missing = [k for k in [*need, "betas"] if k not in raw]
    if missing:
        raise DatasetFormatError(path, f"missing keys {missing} (has {sorted(raw)})")
    t = raw["root_orient"].shape[0] if raw["root_orient"].ndim >= 1 else 0
    if t < 2:
        raise DatasetFormatError(path, f"root_orient has shape {raw['root_orient'].shape}; need (T>=2, 3)")
    params: dict[str, np.ndarray] = {}
    for key, width in need.items():
        arr = np.asarray(raw[key])
        if arr.dtype.kind not in "fiu" or arr.shape[0] != t or arr.size != t * width:
            raise DatasetFormatError(path, f"{key} has shape {arr.shape}; expected ({t}, {width})")
        params[key] = arr.reshape(t, width).astype(np.float64)
        check_finite(params[key], path, key)
    betas = np.asarray(raw["betas"], dtype=np.float64)
    betas = betas[None] if betas.ndim == 1 else betas
    if betas.ndim != 2 or betas.shape[0] not in (1, t) or betas.shape[1] not in (10, 16):
        raise DatasetFormatError(path, f"betas has shape {raw['betas'].shape}; expected (1 or {t}, 10 or 16)")
    params["betas"] = betas
    gender = str(raw["gender"].item() if "gender" in raw else "neutral")
    gender = gender.decode() if isinstance(gender, bytes) else gender
    gender = gender.strip().lower()
    if gender not in GENDERS:
        raise DatasetFormatError(path, f"gender {gender!r} is not one of {GENDERS}")
    return params, gender


class InterX:
    """Reader of a local Inter-X copy (needs the user's SMPL-X model, see the module docstring).

    Args:
        root: the dataset folder (holding motions/, texts/, annots/, splits/).
        model_dir: folder with smplx/SMPLX_<GENDER>.npz, the smplx folder, or one model file.
        up_axis: "y" (Inter-X as published) or "z" (an AMASS-style converted copy).
        gender: None to use each file's gender (falling back to neutral when that model file is
            absent, recorded in meta), or one of "neutral", "male", "female" for all people.
        fps: output frame rate.
    """

    def __init__(
        self,
        root: str | Path,
        model_dir: str | Path,
        *,
        up_axis: str = "y",
        gender: str | None = None,
        fps: float = TARGET_FPS,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetFormatError(self.root, "Inter-X root directory does not exist")
        if up_axis not in ("y", "z"):
            raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")
        if gender is not None and gender not in GENDERS:
            raise ValueError(f"gender must be None or one of {GENDERS}, got {gender!r}")
        find_smplx_model(model_dir, gender or "neutral")  # fail now, not after a long listing
        self.model_dir = Path(model_dir)
        self.up_axis = up_axis
        self.gender = gender
        self.fps = float(fps)
        self.joints = SMPLXJoints(model_dir)
        self._order: dict[str, int] | None = None

    def split_ids(self, split: str) -> list[str]:
        """Names listed in `splits/<split>.txt`."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return read_split(self.root / "splits" / f"{split}.txt")

    def interaction_order(self) -> dict[str, int]:
        """name -> index of the person who acts first (0 = P1, 1 = P2), read once."""
        if self._order is None:
            path = require_file(self.root / "annots" / "interaction_order.pkl", "interaction order")
            try:
                with open(path, "rb") as fh:
                    order = pickle.load(fh)  # noqa: S301 - the user's own dataset file
            except Exception as exc:
                raise DatasetFormatError(path, f"cannot unpickle ({exc})") from exc
            if not isinstance(order, dict) or any(int(v) not in (0, 1) for v in order.values()):
                raise DatasetFormatError(path, "expected a dict of name -> 0 or 1")
            self._order = {str(k): int(v) for k, v in order.items()}
        return self._order

    def _gender(self, file_gender: str) -> str:
        if self.gender is not None:
            return self.gender
        try:
            find_smplx_model(self.model_dir, file_gender)
            return file_gender
        except BodyModelNotFoundError:
            return "neutral"

    def load(self, name: str) -> MotionClip:
        """Both people of one clip: joints from SMPL-X, Y up, on the floor, at `fps`, with captions."""
        text_path = self.root / "texts" / f"{name}.txt"
        texts = read_lines(text_path, "caption file")
        if not texts:
            raise DatasetFormatError(text_path, "caption file is empty")
        people, quats, genders = [], [], []
        lengths = []
        for person in ("P1", "P2"):
            path = self.root / "motions" / name / f"{person}.npz"
            params, file_gender = load_params(path)
            if lengths and params["trans"].shape[0] != lengths[0]:
                raise DatasetFormatError(path, f"{params['trans'].shape[0]} frames but P1 has {lengths[0]}")
            gender = self._gender(file_gender)
            pos = self.joints(params, gender).astype(np.float64)
            root_q = axis_angle_to_quat(params["root_orient"])
            body_q = axis_angle_to_quat(params["pose_body"].reshape(-1, NUM_JOINTS - 1, 3))
            if self.up_axis == "z":
                pos = pos @ Z_UP_TO_Y_UP.T
                root_q = quat_mul(matrix_to_quat(Z_UP_TO_Y_UP), root_q)
            people.append(pos)
            quats.append(np.concatenate([root_q[:, None], body_q], axis=1))
            genders.append(gender)
            lengths.append(pos.shape[0])
        pos = np.stack(people)
        pos[..., 1] -= floor_offset(pos)
        q = quat_normalize(np.stack(quats))
        pos = resample_positions(pos, SOURCE_FPS, self.fps, axis=1)
        q = resample_quats(q, SOURCE_FPS, self.fps, axis=1)
        order = self.interaction_order()
        meta: dict[str, Any] = {
            "source": "interx",
            "id": name,
            "source_fps": SOURCE_FPS,
            "up_axis_source": self.up_axis,
            "genders": genders,
            "actor": order.get(name),
        }
        return MotionClip(name=name, positions=pos, fps=self.fps, texts=texts, meta=meta, local_quats=q)

    def iter_split(self, split: str) -> Iterator[MotionClip]:
        """Lazily yield the clips of a split."""
        for name in self.split_ids(split):
            yield self.load(name)
