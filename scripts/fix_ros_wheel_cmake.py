"""Point the ROS 2 wheels' exported CMake files at this virtual environment's Python.

The ros-* wheels on PyPI were built on a manylinux box whose Python lives under
/opt/python/cp311-cp311; their `*Export.cmake` files keep that include path and numpy's, so any
package that generates messages against them fails to configure. Rewriting the paths is enough
(docs/environment.md). Idempotent: files that already point here are left alone.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main() -> int:
    prefix = Path(sys.prefix)
    py_include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    pattern = re.compile(
        r"/opt/python/cp3\d+-cp3\d+/(include/python3\.\d+|lib/python3\.\d+/site-packages/numpy/_core/include)"
    )

    def repl(m: re.Match[str]) -> str:
        return py_include if m.group(1).startswith("include") else np_include

    changed = 0
    for path in prefix.glob("share/*/cmake/*.cmake"):
        text = path.read_text()
        new = pattern.sub(repl, text)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f"fix_ros_wheel_cmake: rewrote {changed} CMake file(s) under {prefix}/share")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
