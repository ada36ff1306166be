"""What the reaction node publishes for an avatar: every frame at 30 Hz, stamped for display, as a
JointState and as a TF tree. A helper of reaction_node.py (kept apart so the node stays readable),
not a node: it holds the frame queue (runtime/avatar_stream.py) and the two publishers.

- JointState on the node's `joint_states_topic`: the bone rotations as (x, y, z, w) components
  named `<bone>.qx` ... and the root as `root.x` ..., in the profile's `convention` (Unity's axes
  for avatar_unity_humanoid).
- tf2_msgs/TFMessage on `tf_topic` (reliable, keep last 100, as tf2 does): the bone tree of
  runtime/rig.py, `output_frame_id` -> `<tf_prefix><root bone>` -> ..., always ROS's right-handed
  axes in the input's world (`pose_up_axis`): TF is read by ROS tools, the profile's convention is
  for the engine reading the JointState.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from molam_ros.ros.convert import joint_state, tf_message
from molam_ros.runtime.avatar_stream import AvatarFrameQueue, AvatarStreamConfig
from molam_ros.runtime.profiles import Profile
from molam_ros.runtime.rig import bone_transforms, to_convention

TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
FPS = 30.0


class AvatarOutput:
    """The avatar's frames queued by stream time and published when due (module docstring).

    `publish_state`: the node's JointState publisher's publish (None: JointState off); `drop(reason,
    detail)`: the node's way of counting what could not be published.
    """

    def __init__(
        self,
        node: Node,
        profile: Profile,
        p: dict[str, Any],
        publish_state: Callable[[Any], None] | None,
        drop: Callable[[str, str], None],
    ) -> None:
        self.profile = profile
        self.queue = AvatarFrameQueue(AvatarStreamConfig(display_delay=float(p["avatar_display_delay"])))
        self.publish_state = publish_state
        self.drop = drop
        self.world = p["output_frame_id"]
        self.prefix = p["tf_prefix"]
        self.z_up = p["pose_up_axis"] == "z"
        self.pub_tf = node.create_publisher(TFMessage, p["tf_topic"], TF_QOS) if p["tf_topic"] else None
        self.names = [f"{b}.{c}" for b in profile.joint_names for c in ("qx", "qy", "qz", "qw")]
        self.names += ["root.x", "root.y", "root.z"]
        self.published = 0
        self._last_idle: float | None = None

    def push_chunk(self, chunk: Any) -> None:
        """Every frame of a step, by the capture stamps of the partner frames it answers."""
        for k, t in enumerate(chunk.times):
            self.queue.push(float(t), chunk.avatar_rotations[k], chunk.avatar_root[k], chunk.safety_state)

    def push_idle(self, cmd: Any, stream_time: float) -> None:
        """A watchdog frame (easing, idle), on the 30 Hz grid of the stream's time that the
        reaction's frames lie on too (k / 30 s), so every stamp a client sees is a whole number of
        frames after the one before."""
        t = np.floor(stream_time * FPS + 1e-6) / FPS
        if self._last_idle is not None and t <= self._last_idle + 1e-6:
            return
        self._last_idle = t
        self.queue.push(t, cmd.rotations, cmd.root, cmd.state)

    def release(self, now: float) -> None:
        """Publish the frames that are due, each stamped with its display time."""
        for frame in self.queue.pop_due(now):
            root, rot = to_convention(frame.root, frame.rotations, self.profile.convention)
            values = np.concatenate([rot[:, [1, 2, 3, 0]].reshape(-1), root])
            try:
                state = joint_state(self.names, values, stamp=frame.display_time)
                tf = None
                if self.pub_tf is not None:
                    tree = bone_transforms(
                        self.profile, frame.rotations, frame.root, world=self.world, z_up=self.z_up
                    )
                    tf = tf_message(
                        tree, stamp=frame.display_time, world_frame=self.world, prefix=self.prefix
                    )
            except ValueError as e:  # non-finite: never published
                self.drop("invalid_output", str(e))
                continue
            if self.publish_state is not None:
                self.publish_state(state)
            if tf is not None:
                self.pub_tf.publish(tf)
            self.published += 1

    def diagnostics(self) -> dict[str, object]:
        """The figures for the node's DiagnosticArray (rate, late frames, display margin)."""
        q = self.queue
        out: dict[str, object] = {
            "avatar_rate_hz": round(q.rate(), 1),
            "avatar_frames": q.stats["released"],
            "avatar_late_frames": q.stats["late"],
            "avatar_display_delay_ms": round(q.config.display_delay * 1e3, 1),
        }
        if q.margins:
            margins = np.asarray(q.margins) * 1e3
            out["avatar_display_margin_ms_p50"] = round(float(np.median(margins)), 1)
            out["avatar_display_margin_ms_p1"] = round(float(np.percentile(margins, 1)), 1)  # the 1 % latest
        return out
