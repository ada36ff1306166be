"""The interaction classifier: judges whether a generated two-person pair shows the asked interaction.

Text-to-motion is scored by this small, fast classifier trained on generator clips (pooled
hand-crafted descriptors of the pair and a one-hidden-layer MLP); it shares nothing with the model
it judges.

    clf = InteractionClassifier().fit(MotionDataset("data"), split="train")
    clf.accuracy(MotionDataset("data"), split="test")

Run `python -m molam_ros.llm.interaction_classifier --data DIR` to train the classifier on DIR's
train split and print its accuracy on the test split (`--eval-data OTHER --split all` measures on
another dataset).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset
from molam_ros.llm.quality import format_share
from molam_ros.motion.canonical import canonicalize, facing_direction
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX
FPS = 30.0
_EPS = 1e-9


# Per-frame signals of one person ("self") relative to the other, pooled over time into a clip
# descriptor. All are invariant to where the pair stands and which way it faces (only horizontal
# distances, heights above the floor and angles between the two people enter), and lengths are
# divided by the person's height so tall and short people look alike.
_SIGNALS = (
    "distance",  # horizontal root distance / mean height
    "approach",  # root velocity towards the other, heights per second
    "sideways",  # root speed across the line to the other
    "root_height",  # pelvis height / height (crouch, jump)
    "faces_other",  # cos(facing, direction to the other)
    "faces_same",  # cos(facing, other's facing): -1 face to face, +1 one behind the other
    "turn_rate",  # facing angular speed, rad/s
    "lean",  # neck ahead of the pelvis along the facing / height (bow, lean)
    "head_down",  # head below the neck-height line, along the facing
    "hand_high",  # higher wrist height / height
    "hand_low",  # lower wrist height / height
    "hand_reach",  # farther wrist ahead of the root along the facing / height
    "hand_side",  # farther wrist sideways from the root / height
    "hand_speed",  # faster wrist speed, heights per second
    "hand_vspeed",  # faster wrist vertical speed (waving, pumping)
    "hand_to_hand",  # nearest own wrist to nearest other's wrist / height
    "hand_to_head",  # nearest own wrist to the other's head / height
    "hand_to_chest",  # nearest own wrist to the other's spine3 / height
    "hand_to_back",  # nearest own wrist behind the other's chest (hug) / height
    "hand_between",  # how far the farther-reaching wrist goes towards the other (fraction of distance)
    "elbow_high",  # higher elbow height / height
    "foot_high",  # higher ankle height / height (kick)
    "foot_reach",  # farther ankle ahead of the root / height
    "hand_to_face",  # nearest own wrist to own head / height (looking at an object)
    "both_hands",  # the lower wrist's reach ahead / height (both arms used: push, hug, block)
    "twist",  # |angle| between the shoulder line and the hip line, rad (turning the torso to look)
    "head_side",  # head sideways of the neck, across the facing / height (turning the head)
    "arm_straight",  # straighter arm: wrist-shoulder distance / arm length (pointing, reaching out)
)
_POOLS = ("mean", "std", "min", "max", "p10", "p90", "mean_third1", "mean_third2", "mean_third3")
_PAIR_SIGNALS = (
    "corr_hand_high",  # how alike the two hands' heights move (mirroring)
    "corr_root_speed",
    "corr_lean",
    "speed_ratio",  # log of a's over b's mean root speed
    "contact_seconds",  # how long a wrist of each is within a tenth of a height of the other's
    "contact_pump",  # vertical speed of the touching wrists while touching (handshake pumping)
    "contact_height",  # height of the touching wrists / mean height
)


def _horizontal(v: np.ndarray) -> np.ndarray:
    out = np.array(v, dtype=np.float64)
    out[..., 1] = 0.0
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > _EPS, v / np.maximum(n, _EPS), 0.0)


def _speed(x: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame rate of change of x (T, ...) along time, same length (backward differences)."""
    d = np.diff(x, axis=0, prepend=x[:1]) * fps
    if len(d) > 1:
        d[0] = d[1]
    return d


def _person_signals(me: np.ndarray, other: np.ndarray, fps: float) -> np.ndarray:
    """(T, len(_SIGNALS)) signals of person `me` towards `other`, both (T, 22, 3) canonical."""
    h_me = max(float(np.percentile(me[:, J["head"], 1], 90)), 0.5)
    h_mean = 0.5 * (h_me + max(float(np.percentile(other[:, J["head"], 1], 90)), 0.5))
    root, oroot = me[:, J["pelvis"]], other[:, J["pelvis"]]
    to_other = _horizontal(oroot - root)
    dist = np.linalg.norm(to_other, axis=-1)
    u = _unit(to_other)
    face, oface = facing_direction(me), facing_direction(other)
    left = np.cross(np.array([0.0, 1.0, 0.0]), face)  # up x forward = the person's left
    vel = _horizontal(_speed(root, fps))
    approach = np.sum(vel * u, axis=-1)
    sideways = np.linalg.norm(vel - approach[:, None] * u, axis=-1)
    yaw = np.unwrap(np.arctan2(face[:, 0], face[:, 2]))
    wrists = me[:, [J["left_wrist"], J["right_wrist"]]]  # (T, 2, 3)
    owrists = other[:, [J["left_wrist"], J["right_wrist"]]]
    rel_w = _horizontal(wrists - root[:, None])
    reach = np.sum(rel_w * face[:, None], axis=-1)
    w_speed = np.linalg.norm(_speed(wrists, fps), axis=-1)
    w_vspeed = np.abs(_speed(wrists[..., 1], fps))
    ohead, ochest = other[:, J["head"]], other[:, J["spine3"]]
    oback = ochest - 0.15 * h_mean * facing_direction(other)[:, :]
    ankles = me[:, [J["left_ankle"], J["right_ankle"]]]
    along = np.sum(_horizontal(wrists - root[:, None]) * u[:, None], axis=-1) / np.maximum(dist, 0.1)[:, None]

    def near(points: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points - target[:, None], axis=-1).min(axis=1)

    cols = {
        "distance": dist / h_mean,
        "approach": approach / h_me,
        "sideways": sideways / h_me,
        "root_height": root[:, 1] / h_me,
        "faces_other": np.sum(face * u, axis=-1),
        "faces_same": np.sum(face * oface, axis=-1),
        "turn_rate": np.abs(_speed(yaw, fps)),
        "lean": np.sum(_horizontal(me[:, J["neck"]] - root) * face, axis=-1) / h_me,
        "head_down": (me[:, J["neck"], 1] - me[:, J["head"], 1]) / h_me,
        "hand_high": wrists[..., 1].max(axis=1) / h_me,
        "hand_low": wrists[..., 1].min(axis=1) / h_me,
        "hand_reach": reach.max(axis=1) / h_me,
        "hand_side": np.abs(np.sum(rel_w * left[:, None], axis=-1)).max(axis=1) / h_me,
        "hand_speed": w_speed.max(axis=1) / h_me,
        "hand_vspeed": w_vspeed.max(axis=1) / h_me,
        "hand_to_hand": np.linalg.norm(wrists[:, :, None] - owrists[:, None], axis=-1).min(axis=(1, 2))
        / h_me,
        "hand_to_head": near(wrists, ohead) / h_me,
        "hand_to_chest": near(wrists, ochest) / h_me,
        "hand_to_back": near(wrists, oback) / h_me,
        "hand_between": along.max(axis=1),
        "elbow_high": me[:, [J["left_elbow"], J["right_elbow"]], 1].max(axis=1) / h_me,
        "foot_high": ankles[..., 1].max(axis=1) / h_me,
        "foot_reach": np.sum(_horizontal(ankles - root[:, None]) * face[:, None], axis=-1).max(axis=1) / h_me,
        "hand_to_face": near(wrists, me[:, J["head"]]) / h_me,
        "both_hands": reach.min(axis=1) / h_me,
        "twist": _twist(me),
        "head_side": np.abs(np.sum((me[:, J["head"]] - me[:, J["neck"]]) * left, axis=-1)) / h_me,
        "arm_straight": _arm_straightness(me),
    }
    return np.stack([cols[name] for name in _SIGNALS], axis=-1)


def _twist(me: np.ndarray) -> np.ndarray:
    """|Angle| (rad) in the horizontal plane between a person's shoulder line and hip line, (T,)."""
    hips = _horizontal(me[:, J["right_hip"]] - me[:, J["left_hip"]])
    shoulders = _horizontal(me[:, J["right_shoulder"]] - me[:, J["left_shoulder"]])
    cross = hips[:, 2] * shoulders[:, 0] - hips[:, 0] * shoulders[:, 2]
    return np.abs(np.arctan2(cross, np.sum(hips * shoulders, axis=-1)))


def _arm_straightness(me: np.ndarray) -> np.ndarray:
    """Straighter arm's shoulder-to-wrist distance over its bone length (1 = fully straight), (T,)."""
    out = []
    for side in ("left", "right"):
        sh, el, wr = (me[:, J[f"{side}_{j}"]] for j in ("shoulder", "elbow", "wrist"))
        length = np.linalg.norm(el - sh, axis=-1) + np.linalg.norm(wr - el, axis=-1)
        out.append(np.linalg.norm(wr - sh, axis=-1) / np.maximum(length, 1e-3))
    return np.max(out, axis=0)


def _contact(canon: np.ndarray, fps: float) -> np.ndarray:
    """(contact_seconds, contact_pump, contact_height) of a canonical pair (2, T, 22, 3)."""
    h = max(float(np.percentile(canon[:, :, J["head"], 1], 90)), 0.5)
    wrists = canon[:, :, [J["left_wrist"], J["right_wrist"]]]  # (2, T, 2, 3)
    d = np.linalg.norm(wrists[0][:, :, None] - wrists[1][:, None], axis=-1)  # (T, 2, 2)
    flat = d.reshape(len(d), -1)
    pick = flat.argmin(axis=1)
    touching = flat.min(axis=1) < 0.1 * h
    ia, ib = np.unravel_index(pick, (2, 2))
    frames = np.arange(len(d))
    wa, wb = wrists[0, frames, ia], wrists[1, frames, ib]  # the nearest wrists, (T, 3)
    vy = 0.5 * np.abs(
        _speed(wrists[0, :, :, 1], fps)[frames, ia] + _speed(wrists[1, :, :, 1], fps)[frames, ib]
    )
    if not touching.any():
        return np.array([0.0, 0.0, 0.0])
    return np.array(
        [
            touching.sum() / fps,
            float(vy[touching].mean()) / h,
            float(0.5 * (wa[touching, 1] + wb[touching, 1]).mean()) / h,
        ]
    )


def _pool(x: np.ndarray) -> np.ndarray:
    """(T, S) -> (len(_POOLS) * S,): statistics over the whole clip and means over its thirds."""
    thirds = np.array_split(x, 3, axis=0) if len(x) >= 3 else [x, x, x]
    stats = [
        x.mean(0),
        x.std(0),
        x.min(0),
        x.max(0),
        np.percentile(x, 10, axis=0),
        np.percentile(x, 90, axis=0),
        *(part.mean(0) for part in thirds),
    ]
    return np.concatenate(stats)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    sx, sy = x.std(), y.std()
    if sx < 1e-6 or sy < 1e-6:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def pair_descriptors(positions: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Descriptors (2, DESCRIPTOR_DIM) float32 of a two-person clip (2, T, 22, 3): as given, and swapped.

    The pair is canonicalised (person a's first frame, floor at y = 0); per-person signals
    (`_SIGNALS`) of a towards b and of b towards a are pooled over time (`_POOLS`), followed by a
    few signals of the pair together (`_PAIR_SIGNALS`). Row 1 describes the same clip with b
    first: the generator's actor is person a in most clips but not all, and text-to-motion output
    may put the actor on either side, so the classifier learns and averages both orders. Every
    signal is invariant to a rigid move of the scene on the floor, so swapping only reorders blocks
    (and flips the sign of the speed ratio); it needs no second pass.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 4 or pos.shape[0] != 2 or pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected a two-person clip (2, T, 22, 3), got {pos.shape}")
    if pos.shape[1] < 2:
        raise ValueError("a clip needs at least 2 frames")
    canon, _ = canonicalize(pos)
    sa = _person_signals(canon[0], canon[1], fps)
    sb = _person_signals(canon[1], canon[0], fps)
    idx = {name: i for i, name in enumerate(_SIGNALS)}
    speed_a = np.linalg.norm(_horizontal(_speed(canon[0, :, 0], fps)), axis=-1)
    speed_b = np.linalg.norm(_horizontal(_speed(canon[1, :, 0], fps)), axis=-1)
    ratio = float(np.log((speed_a.mean() + 0.05) / (speed_b.mean() + 0.05)))
    shared = [
        _corr(sa[:, idx["hand_high"]], sb[:, idx["hand_high"]]),
        _corr(speed_a, speed_b),
        _corr(sa[:, idx["lean"]], sb[:, idx["lean"]]),
    ]
    contact = _contact(canon, fps)
    pa, pb = _pool(sa), _pool(sb)
    rows = (
        np.concatenate([pa, pb, shared, [ratio], contact]),
        np.concatenate([pb, pa, shared, [-ratio], contact]),
    )
    return np.stack(rows).astype(np.float32)


def pair_descriptor(positions: np.ndarray, fps: float = FPS, swap: bool = False) -> np.ndarray:
    """One row of `pair_descriptors`: the clip as given, or with the two people swapped."""
    return pair_descriptors(positions, fps)[int(swap)]


DESCRIPTOR_DIM = 2 * len(_POOLS) * len(_SIGNALS) + len(_PAIR_SIGNALS)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the setting.

    The classifier's matrices are tiny: extra threads only add synchronisation, and on a busy
    machine a parallel region that waits for a descheduled thread costs 100x the work itself.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _labelled_clips(source: MotionDataset | Iterable[MotionClip], split: str | None) -> Iterable[MotionClip]:
    if isinstance(source, MotionDataset):
        return source.iter_split(split)
    return source


@dataclass
class InteractionClassifier:
    """Interaction type of a two-person clip from pooled hand-crafted descriptors and a small MLP.

    Why this design: it must judge text-to-motion output on CPU in milliseconds and train in
    seconds, and it must not share anything with the model it judges (no motion tokens, no
    learned motion features). Descriptors (`pair_descriptor`) are standardised; an MLP with one
    hidden layer is trained with Adam and weight decay on mini-batches of both person orders of every
    training clip; prediction averages the probabilities of both orders.
    """

    hidden: int = 128
    steps: int = 400
    batch: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    labels: list[str] = field(default_factory=list)
    _mean: np.ndarray | None = field(default=None, init=False, repr=False)
    _std: np.ndarray | None = field(default=None, init=False, repr=False)
    _net: torch.nn.Sequential | None = field(default=None, init=False, repr=False)

    # --- training -------------------------------------------------------------------------

    def fit(
        self, source: MotionDataset | Iterable[MotionClip], split: str | None = "train"
    ) -> InteractionClassifier:
        """Train on the clips of a dataset split (or any clips) labelled by meta["interaction"]."""
        xs, ys = [], []
        for clip in _labelled_clips(source, split):
            label = clip.meta.get("interaction")
            if label is None or clip.num_people != 2:
                continue
            rows = self.clip_descriptors(clip)
            xs.extend(rows)
            ys.extend([str(label)] * len(rows))
        return self._fit_rows(xs, ys)

    descriptor_dim: ClassVar[int] = DESCRIPTOR_DIM  # these four: what llm/reactor_classifier.py changes
    file_format: ClassVar[str] = "molam-interaction-classifier"

    def descriptors(self, positions: np.ndarray, fps: float = FPS) -> np.ndarray:
        """(R, descriptor_dim) rows describing one clip (2, T, 22, 3); predictions average the rows."""
        return pair_descriptors(positions, fps)

    def clip_descriptors(self, clip: MotionClip) -> np.ndarray:
        """The training rows of a labelled dataset clip."""
        return self.descriptors(clip.positions, clip.fps)

    def _fit_rows(self, xs: list[np.ndarray], ys: list[str]) -> InteractionClassifier:
        if not xs:
            raise ValueError("no labelled two-person clips to train on")
        self.labels = sorted(set(ys))
        x = np.stack(xs)
        self._mean = x.mean(0)
        self._std = x.std(0) + 1e-3
        y = torch.tensor([self.labels.index(v) for v in ys])
        self._net = self._make_net()
        with _one_thread():
            self._train(torch.from_numpy((x - self._mean) / self._std), y)
        return self

    def _make_net(self) -> torch.nn.Sequential:
        """The MLP, initialised from `seed` without touching torch's global random state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return torch.nn.Sequential(
                torch.nn.Linear(self.descriptor_dim, self.hidden),
                torch.nn.ReLU(),
                torch.nn.Dropout(0.2),
                torch.nn.Linear(self.hidden, len(self.labels)),
            )

    def _train(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """A fixed number of Adam steps on random mini-batches: the cost does not grow with the data."""
        assert self._net is not None
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.AdamW(self._net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self._net.train()
        for _ in range(self.steps):
            idx = torch.randint(len(x), (self.batch,), generator=gen) if len(x) > self.batch else slice(None)
            xb, yb = x[idx], y[idx]
            noise = 0.05 * torch.randn(xb.shape, generator=gen)  # a little input noise: smoother margins
            loss = torch.nn.functional.cross_entropy(self._net(xb + noise), yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self._net.eval()

    # --- prediction -----------------------------------------------------------------------

    def _check_fitted(self) -> torch.nn.Sequential:
        if self._net is None or self._mean is None or self._std is None:
            raise RuntimeError("InteractionClassifier is not trained: call fit() or load()")
        return self._net

    def predict_proba(self, positions: np.ndarray, fps: float = FPS) -> dict[str, float]:
        """Probability of every interaction type for a clip (2, T, 22, 3), both person orders averaged."""
        net = self._check_fitted()
        x = self.descriptors(positions, fps)
        x = torch.from_numpy(((x - self._mean) / self._std).astype(np.float32))
        with torch.no_grad(), _one_thread():
            p = torch.softmax(net(x), dim=-1).mean(0).numpy()
        return {label: float(v) for label, v in zip(self.labels, p, strict=True)}

    def predict(self, positions: np.ndarray, fps: float = FPS) -> str:
        """The most probable interaction type of a clip (2, T, 22, 3) at `fps`."""
        proba = self.predict_proba(positions, fps)
        return max(proba, key=proba.__getitem__)

    def accuracy(self, source: MotionDataset | Iterable[MotionClip], split: str | None = "test") -> float:
        """Share of labelled two-person clips of a split whose interaction is predicted right."""
        hits, total = self.confusion_counts(source, split)
        return hits / total

    def confusion_counts(
        self, source: MotionDataset | Iterable[MotionClip], split: str | None = "test"
    ) -> tuple[int, int]:
        """(right, total) over the labelled two-person clips of a split."""
        hits = total = 0
        for clip in _labelled_clips(source, split):
            if clip.meta.get("interaction") is None or clip.num_people != 2:
                continue
            total += 1
            hits += int(self.predict(clip.positions, clip.fps) == clip.meta["interaction"])
        if total == 0:
            raise ValueError("no labelled two-person clips to evaluate")
        return hits, total

    # --- files ----------------------------------------------------------------------------

    def save(self, path: Path | str) -> None:
        """Write the classifier to one small .npz (weights, standardisation, labels, settings)."""
        net = self._check_fitted()
        config = {
            "format": self.file_format,
            "version": 1,
            "descriptor_dim": self.descriptor_dim,
            "labels": self.labels,
            "hidden": self.hidden,
            "steps": self.steps,
            "batch": self.batch,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
        }
        weights = {f"net.{k}": v.detach().numpy() for k, v in net.state_dict().items()}
        with Path(path).open("wb") as f:
            np.savez(f, config=np.array(json.dumps(config)), mean=self._mean, std=self._std, **weights)

    @classmethod
    def load(cls, path: Path | str) -> InteractionClassifier:
        """Read a classifier written by `save`."""
        with np.load(path) as z:
            config = json.loads(str(z["config"]))
            if config.get("format") != cls.file_format:
                raise ValueError(f"{path}: not a {cls.file_format} file")
            if config["descriptor_dim"] != cls.descriptor_dim:
                raise ValueError(
                    f"{path}: descriptor size {config['descriptor_dim']}, not {cls.descriptor_dim}"
                )
            keys = ("hidden", "steps", "batch", "lr", "weight_decay", "seed")
            clf = cls(**{k: config[k] for k in keys}, labels=list(config["labels"]))
            clf._mean, clf._std = z["mean"], z["std"]
            state = {k[len("net.") :]: torch.from_numpy(z[k]) for k in z.files if k.startswith("net.")}
        clf._net = clf._make_net()
        clf._net.load_state_dict(state)
        clf._net.eval()
        return clf


# =============================================================================================
# measuring the classifier


def main(argv: Sequence[str] | None = None) -> int:
    """Train the classifier on a dataset's train split and print its held-out accuracy."""
    p = argparse.ArgumentParser(
        prog="python -m molam_ros.llm.interaction_classifier", description=main.__doc__
    )
    p.add_argument("--data", type=Path, required=True, help="dataset to train on (its train split)")
    p.add_argument("--eval-data", type=Path, help="dataset to measure on (default: --data)")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"), help="split measured")
    p.add_argument("--save", type=Path, help="write the trained classifier here (.npz)")
    args = p.parse_args(argv)
    train = MotionDataset(args.data)
    start = time.perf_counter()
    clf = InteractionClassifier().fit(train, split="train")
    trained = time.perf_counter() - start
    split = None if args.split == "all" else args.split
    hits, total = clf.confusion_counts(MotionDataset(args.eval_data or args.data), split)
    print(
        f"trained on {len(train.ids('train'))} clips in {trained:.1f} s; "
        f"{args.split} accuracy on {args.eval_data or args.data}: {format_share(hits, total)}"
    )
    if args.save is not None:
        clf.save(args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
