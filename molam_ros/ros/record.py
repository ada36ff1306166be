"""Record ROS topics into an MCAP bag, and read PersonPose recordings back.

Why not `ros2 bag`: the ros2 CLI is not installable on every machine this package runs on (the
PyPI ROS wheels have no ros2cli), and tests need to record from Python anyway. What is written is
what `ros2 bag record -s mcap` writes, a rosbag2 directory (`metadata.yaml` + `<name>_0.mcap`), so
`ros2 bag play`, rosbags, Foxglove and the `mcap` tools all read it.

Messages are recorded raw (`raw=True` subscriptions): the CDR bytes as they came off the wire.
Re-serialising them with rclpy would add trailing bytes that rosbags rejects, and it is slower.

Message definitions go into the bag (so readers need no ROS install): standard types come from
rosbags' Kilted typestore, others (molam_msgs) from the `.msg` files in their package's share
directory, found through the ament index.

    python -m molam_ros.ros.record OUT_DIR --topic /molam/person_pose [--count N] [--duration S]
    python -m molam_ros.ros.record OUT_DIR --topic /molam/reference_reaction:molam_msgs/msg/PersonPose

A topic given with its type (`NAME:TYPE`) is subscribed at once, whether or not anything publishes
it yet (and it may never: a one-person clip has no /molam/reference_reaction); a topic without a
type waits up to --discovery-timeout for a publisher to tell its type.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import rclpy
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PERSON_POSE_TYPE = "molam_msgs/msg/PersonPose"

# Field types of .msg files that are not messages of their own.
_PRIMITIVES = {
    "bool",
    "byte",
    "char",
    "float32",
    "float64",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "string",
    "wstring",
}


# --- message definitions ---------------------------------------------------------------------


def _msg_dependencies(text: str, package: str) -> list[str]:
    """Message types that fields of a .msg text refer to, as `pkg/msg/Name`."""
    deps = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) < 2 or "=" in parts[1]:
            continue  # blank, or a constant (`int8 FOO=1`)
        base = re.sub(r"\[.*\]$", "", parts[0])  # drop array suffixes
        base = re.sub(r"<=\d+$", "", base)  # bounded strings
        if base in _PRIMITIVES:
            continue
        pkg, _, name = base.rpartition("/")
        deps.append(f"{pkg or package}/msg/{name}")
    return deps


def _share_dir(package: str) -> Path:
    """A package's share directory: from the ament index on a sourced ROS install, else from this
    Python's prefix (the PyPI ROS wheels install there and set no AMENT_PREFIX_PATH)."""
    try:
        return Path(get_package_share_directory(package))
    except (PackageNotFoundError, OSError):
        fallback = Path(sys.prefix) / "share" / package
        if fallback.is_dir():
            return fallback
        raise LookupError(
            f"package {package!r} is neither in the ament index nor in {fallback.parent}"
        ) from None


def ensure_type(typestore: Typestore, msgtype: str) -> None:
    """Register `msgtype` (and what it uses) in `typestore` from its package's .msg file if missing."""
    if msgtype in typestore.types:
        return
    pkg, kind, name = msgtype.split("/")
    path = _share_dir(pkg) / kind / f"{name}.msg"
    if not path.is_file():
        raise LookupError(f"no definition of {msgtype}: {path} does not exist")
    text = path.read_text()
    for dep in _msg_dependencies(text, pkg):
        ensure_type(typestore, dep)
    typestore.register(get_types_from_msg(text, msgtype))


def _qos_for(node: Node, topic: str) -> QoSProfile:
    """Reliable if every publisher offers it, else best effort (which matches every publisher)."""
    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1000,  # a deep queue: the writer must not drop what arrives in a burst
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
    )


# --- recording -------------------------------------------------------------------------------


class BagRecorder:
    """Writes raw messages of some topics of `node` into a new rosbag2 MCAP directory `path`.

    topics: topic name -> message type (`pkg/msg/Name`); `discover_types` finds types from the
    graph. Each message is stored with its receive time. Call `close()` (or use `with`) to write
    the bag's metadata; until then the bag is incomplete.
    """

    def __init__(self, node: Node, path: str | Path, topics: Mapping[str, str]) -> None:
        if not topics:
            raise ValueError("nothing to record: no topics given")
        self._node = node
        self._typestore = get_typestore(Stores.ROS2_KILTED)
        self._writer = Writer(Path(path), version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.counts: dict[str, int] = {}
        self._subscriptions = []
        try:
            connections = {topic: self._add_connection(topic, msgtype) for topic, msgtype in topics.items()}
        except Exception:
            self._writer.close()  # leaves an empty but valid bag rather than a half-open file
            raise
        for topic, msgtype in topics.items():
            self.counts[topic] = 0
            callback = self._writer_for(topic, connections[topic])
            qos = _qos_for(node, topic)
            sub = node.create_subscription(_import_message(msgtype), topic, callback, qos, raw=True)
            self._subscriptions.append(sub)

    def _add_connection(self, topic: str, msgtype: str) -> object:
        ensure_type(self._typestore, msgtype)
        return self._writer.add_connection(topic, msgtype, typestore=self._typestore)

    def _writer_for(self, topic: str, connection: object) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            self._writer.write(connection, self._node.get_clock().now().nanoseconds, data)
            self.counts[topic] += 1

        return write

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []
        self._writer.close()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_message(msgtype: str) -> type:
    pkg, kind, name = msgtype.split("/")
    module = __import__(f"{pkg}.{kind}", fromlist=[name])
    return getattr(module, name)


def parse_topic(spec: str) -> tuple[str, str | None]:
    """`/a/b:pkg/msg/Type` -> ("/a/b", "pkg/msg/Type"); `/a/b` -> ("/a/b", None). ROS names hold no ':'."""
    name, sep, msgtype = spec.partition(":")
    if sep and msgtype.count("/") != 2:
        raise ValueError(f"--topic {spec!r}: the type must be written pkg/msg/Name")
    return name, (msgtype or None)


def discover_types(node: Node, topics: Sequence[str], timeout: float) -> dict[str, str]:
    """Message type of each topic, waiting up to `timeout` seconds for its publishers to appear.

    Topics given as `NAME:TYPE` take that type and wait for nothing: a recording must not hang on a
    topic that has no publisher (yet, or at all)."""
    given = dict(parse_topic(t) for t in topics)
    deadline = time.monotonic() + timeout
    while True:
        known = {name: types[0] for name, types in node.get_topic_names_and_types() if types}
        known.update({name: msgtype for name, msgtype in given.items() if msgtype})
        missing = [t for t in given if t not in known]
        if not missing:
            return {t: known[t] for t in given}
        if time.monotonic() > deadline:
            raise TimeoutError(f"no publisher of {missing} appeared within {timeout} s")
        rclpy.spin_once(node, timeout_sec=0.05)


# --- reading ---------------------------------------------------------------------------------


def _mcap_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.mcap"))
        if not files:
            raise FileNotFoundError(f"{path} holds no .mcap file")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"no bag at {path}")
    return [path]


def read_raw(path: str | Path, msgtype: str) -> tuple[str, list[tuple[int, bytes]]]:
    """(topic, [(receive time ns, CDR bytes)]) of the one topic of type `msgtype` in an MCAP bag.

    `path` is a rosbag2 directory or a single .mcap file. A bag with several topics of that type
    is refused with their names (choose one with `read_raw_topic`).
    """
    from mcap.reader import make_reader

    topics: set[str] = set()
    for file in _mcap_files(Path(path)):
        with file.open("rb") as f:
            summary = make_reader(f).get_summary()
            if summary is None:
                continue
            topics |= {
                c.topic for c in summary.channels.values() if summary.schemas[c.schema_id].name == msgtype
            }
    if len(topics) != 1:
        found = sorted(topics) or "none"
        raise ValueError(f"{path}: expected one topic of type {msgtype}, found {found}")
    topic = topics.pop()
    return topic, list(read_raw_topic(path, topic))


def read_raw_topic(path: str | Path, topic: str) -> Iterator[tuple[int, bytes]]:
    """(receive time ns, CDR bytes) of every message of `topic`, in time order."""
    from mcap.reader import make_reader

    for file in _mcap_files(Path(path)):
        with file.open("rb") as f:
            for _schema, _channel, message in make_reader(f).iter_messages(
                topics=[topic], log_time_order=True
            ):
                yield message.log_time, bytes(message.data)


def message_counts(path: str | Path) -> dict[str, int]:
    """Messages per topic, from the bags' summary sections (no message is read)."""
    from mcap.reader import make_reader

    counts: dict[str, int] = {}
    for file in _mcap_files(Path(path)):
        with file.open("rb") as f:
            summary = make_reader(f).get_summary()
        if summary is None or summary.statistics is None:
            continue
        for channel_id, n in summary.statistics.channel_message_counts.items():
            topic = summary.channels[channel_id].topic
            counts[topic] = counts.get(topic, 0) + n
    return counts


def read_messages(
    path: str | Path, msg_class: type, topic: str | None = None
) -> tuple[str, list[tuple[int, object]]]:
    """Deserialised messages of one topic: (topic, [(receive time ns, message)])."""
    msgtype = msg_class.__module__.split(".")[0] + "/msg/" + msg_class.__name__
    if topic is None:
        topic, raw = read_raw(path, msgtype)
    else:
        raw = list(read_raw_topic(path, topic))
    return topic, [(t, deserialize_message(data, msg_class)) for t, data in raw]


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m molam_ros.ros.record",
        description="Record topics into a rosbag2 MCAP directory (what `ros2 bag record -s mcap` writes).",
    )
    parser.add_argument("out", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument(
        "--topic",
        action="append",
        required=True,
        help="topic to record, NAME or NAME:TYPE (pkg/msg/Name: no waiting for a publisher); repeat for more",
    )
    parser.add_argument("--count", type=int, help="stop after this many messages in all")
    parser.add_argument("--duration", type=float, help="stop after this many seconds of recording")
    parser.add_argument(
        "--discovery-timeout", type=float, default=10.0, help="seconds to wait for publishers"
    )
    args, ros_args = parser.parse_known_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists already; a bag is never overwritten")

    rclpy.init(args=ros_args)
    node = rclpy.create_node("molam_recorder")
    recorder = None
    try:
        topics = discover_types(node, args.topic, args.discovery_timeout)
        recorder = BagRecorder(node, args.out, topics)
        node.get_logger().info(f"recording {topics} to {args.out}")
        start = time.monotonic()
        while rclpy.ok():
            if args.count is not None and recorder.total >= args.count:
                break
            if args.duration is not None and time.monotonic() - start >= args.duration:
                break
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # SIGINT/SIGTERM: a normal way to end a recording
    except RuntimeError:
        if rclpy.ok():  # with the context down, the signal raced the wait set (ros2/rclpy#398)
            raise
    except (TimeoutError, LookupError, ValueError) as e:
        node.get_logger().error(str(e))
        return 1
    finally:
        if recorder is not None:
            recorder.close()  # writes the bag's metadata: the bag is complete from here on
        node.destroy_node()
        rclpy.try_shutdown()
        if recorder is not None:  # after the node is gone: after a signal its /rosout is invalid
            rclpy.logging.get_logger("molam_recorder").info(f"recorded {recorder.counts} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
