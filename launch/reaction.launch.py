"""Launch the molam_ros runtime on a standard ROS 2 install.

    ros2 launch molam_ros reaction.launch.py                       # the reaction node
    ros2 launch molam_ros reaction.launch.py replay:=true          # + a replayed person (no tracker)
    ros2 launch molam_ros reaction.launch.py profile:=unitree_h1 engine:=tensorrt device:=cuda
    ros2 launch molam_ros reaction.launch.py --show-args           # every argument, with its default

What runs is not written here: the nodes, their params files, parameters and remappings, and the
launch arguments themselves come from config/bringup.yaml (installed to share/molam_ros/config),
through `molam_ros.bringup.describe_nodes`, the function `molam bringup` uses to start the same
nodes as plain processes where launch is not installed. So the two cannot drift apart.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch_ros.actions import Node

from molam_ros.bringup import NodeSpec, describe_nodes, load_arguments, overrides_params_yaml


def bringup_yaml() -> Path:
    """The installed node set."""
    return Path(get_package_share_directory("molam_ros")) / "config" / "bringup.yaml"


def overrides_file(spec: NodeSpec) -> str:
    """The argument overrides as a params file keyed `/**` (what `molam bringup`'s `-p` gives rcl).

    Not a dict: launch_ros keys a dict by the node's full name, and rcl orders a node's params by
    the key each first appears under, so a user's `/**` params_file would then lose to the defaults.
    """
    with tempfile.NamedTemporaryFile("w", prefix=f"molam_{spec.name}_", suffix=".yaml", delete=False) as f:
        f.write(overrides_params_yaml(spec.parameters))
    return f.name


def node_action(spec: NodeSpec, node_class: type = Node) -> Node:
    """A launch_ros Node for one NodeSpec: its params files, the argument overrides, params_file last."""
    parameters: list = list(spec.params_files)
    if spec.parameters:
        parameters.append(overrides_file(spec))
    parameters += spec.last_params_files
    return node_class(
        package=spec.package,
        executable=spec.executable,
        name=spec.name,
        namespace=spec.namespace or None,
        parameters=parameters,
        remappings=list(spec.remappings),
        output="screen",
    )


def _nodes(context, *args, **kwargs) -> list:  # launch's OpaqueFunction signature
    """Called once the launch arguments are known: one Node per enabled entry of bringup.yaml."""
    path = bringup_yaml()
    given = context.launch_configurations
    values = {name: given[name] for name in load_arguments(path) if name in given}
    return [node_action(spec) for spec in describe_nodes(path, values)]


def generate_launch_description() -> LaunchDescription:
    declared = load_arguments(bringup_yaml())
    arguments = [
        DeclareLaunchArgument(
            arg.name,
            default_value=arg.launch_default(),
            description=arg.description,
            **({"choices": [str(c) for c in arg.choices]} if arg.choices else {}),
        )
        for arg in declared.values()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
