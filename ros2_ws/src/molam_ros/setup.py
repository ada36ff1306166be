"""Build script of the ament_python package molam_ros, for colcon.

The package lives here, not at the repository root, so that a clone of the repository inside a
workspace (`<ws>/src/molam_ros`) holds two packages colcon finds by crawling: this one and
`ros2_ws/src/molam_msgs`. A package.xml or setup.py at the root would make colcon stop there and
never see molam_msgs (it does not look inside a package). `molam_ros`, `launch`, `config` and `msg`
here are links to the repository's own directories; pip installs from the root's pyproject.toml.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "molam_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time motion-language reactions for humanoid robots and VR avatars (ROS 2).",
    license="Apache-2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    # The trained defaults (safetensors + manifests) travel with the code: a fresh install reacts
    # without training anything.
    # The live web view's page and its vendored three.js (molam_ros/web/static) travel the same way.
    package_data={
        PACKAGE: [
            "models/*/*.safetensors",
            "models/*/*.json",
            "web/static/*",
            "web/static/vendor/three/*",
            "web/static/vendor/three/addons/*/*",
        ]
    },
    python_requires=">=3.10",
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/profiles", glob("config/profiles/*.yaml")),
        (f"share/{PACKAGE}/msg", glob("msg/*.msg")),
    ],
    # Runtime dependencies: package.xml (rosdep) and requirements/ (pip); docs/ros.md.
    install_requires=[],
    zip_safe=True,
    # The same console scripts as [project.scripts] of the root's pyproject.toml (a test checks).
    entry_points={
        "console_scripts": [
            "molam = molam_ros.cli:main",
            "pose_replay_node = molam_ros.ros.pose_replay_node:main",
            "reaction_node = molam_ros.ros.reaction_node:main",
            "sim_node = molam_ros.ros.sim_node:main",
            "web_view_node = molam_ros.ros.web_view_node:main",
        ],
    },
)
