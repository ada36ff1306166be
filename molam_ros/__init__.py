"""molam_ros: a motion-language model that makes a humanoid robot or VR avatar react to a person.

The core (everything but `molam_ros.ros`) is plain Python without rclpy, so it runs and is tested
without ROS; the nodes in `molam_ros.ros` only convert messages, hold parameters and call it.
"""

__version__ = "0.1.0"
