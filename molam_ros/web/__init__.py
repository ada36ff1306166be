"""The live web view: the person, the avatar, the commands and replies in a browser (three.js).

No ROS here (docs/style.md rule 2): `frames` turns what the nodes publish into the JSON messages
the page reads, `server` serves the page and streams those messages over a WebSocket, and
`static/` is the page itself with three.js vendored (nothing is fetched from the internet).
`molam_ros/ros/web_view_node.py` is the thin node that feeds them from the ROS topics.
"""
