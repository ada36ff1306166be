"""Rotation conversions: round trips, valid rotations from any 6 numbers, shortest arcs, slerp."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from molam_ros.motion import rotations as rot

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


def random_quats(rng: np.random.Generator, n: int) -> np.ndarray:
    return rot.quat_normalize(rng.normal(size=(n, 4)))


def assert_same_rotation(q1: np.ndarray, q2: np.ndarray, atol: float = 1e-9) -> None:
    """q and -q are one rotation."""
    dot = np.abs(np.sum(q1 * q2, axis=-1))
    np.testing.assert_allclose(dot, 1.0, atol=atol)


def assert_rotation_matrix(m: np.ndarray, atol: float = 1e-9) -> None:
    eye = np.broadcast_to(np.eye(3), m.shape)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=atol)


def test_matrix_quat_round_trip_includes_half_turns():
    rng = np.random.default_rng(0)
    q = random_quats(rng, 500)
    # Rotations by pi about each axis exercise every branch of Shepperd's method.
    q = np.concatenate([q, np.eye(4)])
    m = rot.quat_to_matrix(q)
    assert_rotation_matrix(m)
    assert_same_rotation(rot.matrix_to_quat(m), q)


def test_axis_angle_round_trip_and_small_angles():
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(300, 3))
    aa = aa / np.linalg.norm(aa, axis=-1, keepdims=True) * rng.uniform(0, np.pi - 1e-3, size=(300, 1))
    np.testing.assert_allclose(rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa)), aa, atol=1e-9)
    tiny = np.array([[1e-9, -2e-9, 3e-9], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(rot.quat_to_axis_angle(rot.axis_angle_to_quat(tiny)), tiny, atol=1e-15)


def test_axis_angle_matches_rodrigues():
    aa = np.array([0.0, 0.0, np.pi / 2])
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)


def test_quat_mul_matches_matrix_product_and_rotate():
    rng = np.random.default_rng(2)
    a, b = random_quats(rng, 100), random_quats(rng, 100)
    v = rng.normal(size=(100, 3))
    ab = rot.quat_mul(a, b)
    np.testing.assert_allclose(
        rot.quat_to_matrix(ab), rot.quat_to_matrix(a) @ rot.quat_to_matrix(b), atol=1e-12
    )
    np.testing.assert_allclose(
        rot.quat_rotate(a, v), np.einsum("nij,nj->ni", rot.quat_to_matrix(a), v), atol=1e-12
    )
    identity = rot.quat_mul(a, rot.quat_conjugate(a))
    assert_same_rotation(identity, np.array([1.0, 0, 0, 0]))


def test_6d_round_trip():
    rng = np.random.default_rng(3)
    q = random_quats(rng, 200)
    assert_same_rotation(rot.rot6d_to_quat(rot.quat_to_6d(q)), q)
    m = rot.quat_to_matrix(q)
    np.testing.assert_allclose(rot.rot6d_to_matrix(rot.matrix_to_6d(m)), m, atol=1e-12)


def test_rot6d_to_matrix_is_orthonormal_for_degenerate_input():
    d6 = np.array([[0.0] * 6, [1.0, 0, 0, 2.0, 0, 0], [1e-20, 0, 0, 0, 1e-20, 0]])
    m = rot.rot6d_to_matrix(d6)
    assert np.all(np.isfinite(m))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (8, 6), elements=finite))
def test_rot6d_to_matrix_gives_rotations_from_random_6_vectors(d6):
    a1, a2 = d6[:, :3], d6[:, 3:]
    n1 = np.linalg.norm(a1, axis=-1)
    # Only well-posed inputs must give exact rotations (Gram-Schmidt needs two independent vectors).
    cross = np.linalg.norm(np.cross(a1, a2), axis=-1)
    ok = (n1 > 1e-3) & (cross > 1e-3 * n1 * np.linalg.norm(a2, axis=-1) + 1e-6)
    m = rot.rot6d_to_matrix(d6)
    assert np.all(np.isfinite(m))
    if np.any(ok):
        assert_rotation_matrix(m[ok], atol=1e-8)
        # The first column is the normalised first 3-vector.
        np.testing.assert_allclose(m[ok][:, :, 0], a1[ok] / n1[ok, None], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 3), elements=st.floats(-3.0, 3.0)))
def test_property_conversions_agree(aa):
    q = rot.axis_angle_to_quat(aa)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    m = rot.axis_angle_to_matrix(aa)
    assert_rotation_matrix(m)
    assert_same_rotation(rot.matrix_to_quat(m), q)
    assert_same_rotation(rot.rot6d_to_quat(rot.matrix_to_6d(m)), q)
    assert_same_rotation(rot.axis_angle_to_quat(rot.quat_to_axis_angle(q)), q)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (5, 3), elements=finite), arrays(np.float64, (5, 3), elements=finite))
def test_property_quat_between_maps_u_onto_v(u, v):
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    q = rot.quat_between(u, v)
    assert np.all(np.isfinite(q))
    ok = (nu > 1e-3) & (nv > 1e-3)
    if np.any(ok):
        got = rot.quat_rotate(q[ok], u[ok] / nu[ok, None])
        np.testing.assert_allclose(got, v[ok] / nv[ok, None], atol=1e-7)


def test_quat_between_opposite_and_identical():
    u = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.3, -0.2, 0.9], [0, 0, 2.0]])
    q = rot.quat_between(u, -u)
    np.testing.assert_allclose(rot.quat_rotate(q, u), -u, atol=1e-9)
    assert_same_rotation(rot.quat_between(u, 3 * u), np.tile([1.0, 0, 0, 0], (4, 1)))


def test_quat_between_is_shortest_arc():
    # The rotation axis is perpendicular to both directions: no twist about them.
    rng = np.random.default_rng(4)
    u, v = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    axis = rot.quat_to_axis_angle(rot.quat_between(u, v))
    np.testing.assert_allclose(np.sum(axis * u, -1), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.sum(axis * v, -1), 0.0, atol=1e-9)
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(axis, axis=-1), np.arccos(cos), atol=1e-9)


def test_slerp_endpoints_midpoint_and_shortest_path():
    rng = np.random.default_rng(5)
    a, b = random_quats(rng, 40), random_quats(rng, 40)
    assert_same_rotation(rot.quat_slerp(a, b, np.zeros(40)), a)
    assert_same_rotation(rot.quat_slerp(a, b, np.ones(40)), b)
    assert_same_rotation(rot.quat_slerp(a, -b, np.ones(40)), b)
    mid = rot.quat_slerp(a, b, np.full(40, 0.5))
    # The midpoint is equally far from both ends, along the short way.
    da = np.abs(np.sum(mid * a, -1))
    db = np.abs(np.sum(mid * b, -1))
    np.testing.assert_allclose(da, db, atol=1e-9)
    assert np.all(da >= np.abs(np.sum(a * b, -1)) - 1e-12)
    near = rot.quat_slerp(a, a, np.full(40, 0.3))
    assert_same_rotation(near, a)


def test_yaw_quat_turns_plus_z_towards_plus_x():
    q = rot.yaw_quat(np.array(np.pi / 2))
    np.testing.assert_allclose(rot.quat_rotate(q, [0.0, 0.0, 1.0]), [1.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    q = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=dtype)
    assert rot.quat_to_matrix(q).dtype == dtype
    assert rot.quat_to_6d(q).dtype == dtype
