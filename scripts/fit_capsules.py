"""Print a robot profile's `kinematics:` section from the robot's published URDF and its meshes.

    python scripts/fit_capsules.py URDF MESH_DIR --profile unitree_g1 [--extra head_link ...]

What is copied (facts): every profile joint's parent link, origin (xyz, rpy) and axis, and every
link's mass, from the URDF. What is fitted (an approximation, so it is said): one collision
capsule per link, in the link's frame, fitted to the vertices of the link's visual mesh (binary
STL): the segment along the vertices' principal axis between their `--end` and 1 - `--end`
quantiles, the radius the `--radius` quantile of the vertices' distances to that segment, the
segment then shortened by the radius at each end so the caps end where the mesh does. The meshes
are not shipped (they are large and only the fit is needed); the profiles cite the commit they
were read from, so running this on that checkout prints the profile's numbers again.

Fixed links named with `--extra` (a head, a hand) become links without a joint; other fixed links
are left out (sensors, logos). Links named with `--upright` (a torso, a head) get a vertical segment in
the sagittal plane (y = 0) through the vertices' mean: the robots are left-right symmetric by
design, and a principal axis would follow the shoulders' width, or cables on one side, into the
arms' way. `--radius-of LINK=Q` fits one link's radius at another quantile: a torso mesh is widest
at the shoulder housings, which the shoulder links' own capsules already cover. Links lighter
than `--min-mass` kg get `collide: false`: they are small motor housings inside their neighbours'
capsules.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molam_ros.runtime.profiles import load_profile  # noqa: E402


def read_stl(path: Path) -> np.ndarray:
    """(N, 3) vertices of a binary STL (duplicates kept; they weigh surface areas alike)."""
    data = path.read_bytes()
    count = int(np.frombuffer(data[80:84], dtype="<u4")[0])
    tri = np.frombuffer(
        data[84 : 84 + 50 * count], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    )
    return tri["v"].reshape(-1, 3).astype(np.float64)


def fit_capsule(v: np.ndarray, end: float, radius_q: float, upright: bool = False) -> list[float]:
    """[x1, y1, z1, x2, y2, z2, r] around the vertices `v` (module docstring)."""
    c = v.mean(axis=0)
    if upright:
        c[1] = 0.0
        u = np.array([0.0, 0.0, 1.0])
    else:
        u = np.linalg.svd(v - c, full_matrices=False)[2][0]
    t = (v - c) @ u
    lo, hi = np.quantile(t, [end, 1.0 - end])
    tt = np.clip(t, lo, hi)
    dist = np.linalg.norm(v - (c + tt[:, None] * u), axis=1)
    r = float(np.quantile(dist, radius_q))
    half = max((hi - lo) / 2 - r, 0.0)
    mid = c + (lo + hi) / 2 * u
    a, b = mid - half * u, mid + half * u
    return [round(float(x), 4) for x in (*a, *b)] + [round(r, 4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("urdf", type=Path)
    ap.add_argument("mesh_dir", type=Path)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--extra", nargs="*", default=[], help="fixed links to keep (head, hands)")
    ap.add_argument(
        "--merge", nargs="*", default=[], help="CHILD:PARENT fixed links whose mesh joins the parent's"
    )
    ap.add_argument("--upright", nargs="*", default=[], help="links fitted with a vertical axis at y = 0")
    ap.add_argument("--end", type=float, default=0.02)
    ap.add_argument("--radius", type=float, default=0.8)
    ap.add_argument("--radius-of", nargs="*", default=[], help="LINK=Q: that link's radius quantile")
    ap.add_argument("--min-mass", type=float, default=0.1)
    args = ap.parse_args()

    root = ET.parse(args.urdf).getroot()
    names = set(load_profile(args.profile).joint_names)
    links = {link.get("name"): link for link in root.findall("link")}
    merged: dict[str, list[str]] = {}
    for m in args.merge:
        child, parent = m.split(":")
        merged.setdefault(parent, []).append(child)

    def mesh_vertices(name: str) -> np.ndarray | None:
        parts = []
        for n in [name, *merged.get(name, [])]:
            mesh = links[n].find("visual/geometry/mesh")
            if mesh is not None:
                parts.append(read_stl(args.mesh_dir / Path(mesh.get("filename")).name))
        return np.concatenate(parts) if parts else None

    def mass(name: str) -> float:
        m = links[name].find("inertial/mass")
        return float(m.get("value")) if m is not None else 0.0

    def entry(name: str, parent: str | None, joint: ET.Element | None) -> str:
        fields = [f"name: {name}"]
        if parent is not None:
            origin = joint.find("origin")
            xyz = [float(x) for x in origin.get("xyz", "0 0 0").split()]
            rpy = [float(x) for x in origin.get("rpy", "0 0 0").split()]
            fields.append(f"parent: {parent}")
            if joint.get("type") != "fixed":
                fields.append(f"joint: {joint.get('name')}")
                fields.append(
                    f"axis: [{', '.join(f'{float(a):g}' for a in joint.find('axis').get('xyz').split())}]"
                )
            fields.append(f"pos: [{', '.join(f'{x:g}' for x in xyz)}]")
            if any(rpy):
                fields.append(f"rpy: [{', '.join(f'{x:g}' for x in rpy)}]")
        total = mass(name) + sum(mass(c) for c in merged.get(name, []))
        fields.append(f"mass: {total:g}")
        v = mesh_vertices(name)
        if v is not None:
            capsule = fit_capsule(v, args.end, radius_q.get(name, args.radius), upright=name in args.upright)
            fields.append(f"capsule: {capsule}")
            if total < args.min_mass:
                fields.append("collide: false")
        return "    - {" + ", ".join(fields) + "}"

    radius_q = {k: float(q) for k, q in (item.split("=") for item in args.radius_of)}
    joints = root.findall("joint")
    base = {j.find("parent").get("link") for j in joints} - {j.find("child").get("link") for j in joints}
    lines = [entry(next(iter(base)), None, None)]
    for j in joints:
        keep = j.get("name") in names or (
            j.get("type") == "fixed" and j.find("child").get("link") in args.extra
        )
        if keep:
            lines.append(entry(j.find("child").get("link"), j.find("parent").get("link"), j))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
