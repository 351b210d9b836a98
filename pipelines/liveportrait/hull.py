"""Volume of the 3-D convex hull of a small point set (LivePortrait's 21 keypoints).

The expression-friendly driving option scales motion by sqrt(vol(hull(x_s))) /
sqrt(vol(hull(x_d,0))). SciPy (Qhull) is not a dependency of the pack, so the volume is
computed here by brute force, which is exact and cheap for a few dozen points: a plane
through three points is a hull facet when no point lies strictly outside it; points on
the same facet plane are merged (so coplanar faces are counted once, with the area of
their 2-D hull), and the volume is sum(area * distance from an interior point) / 3.
"""
from __future__ import annotations

import itertools

import numpy as np


def _polygon_area(pts2d: np.ndarray) -> float:
    """Area of the 2-D convex hull of (M,2) points (monotone chain + shoelace)."""
    pts = np.unique(pts2d, axis=0)
    if len(pts) < 3:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def turn(o, a, b):  # z of (a - o) x (b - o)
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    ring = np.array(half(pts) + half(pts[::-1]))
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def convex_hull_volume(points, rel_tol: float = 1e-10) -> float:
    """Volume of the convex hull of (N,3) points, in float64; 0.0 for flat or tiny sets."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(p) < 4:
        return 0.0
    extent = float(np.ptp(p, axis=0).max())
    if extent == 0.0:
        return 0.0
    tol = rel_tol * extent
    tri = np.array(list(itertools.combinations(range(len(p)), 3)))
    normal = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
    length = np.linalg.norm(normal, axis=1)
    keep = length > tol * extent
    tri, normal = tri[keep], normal[keep] / length[keep, None]
    dist = p @ normal.T - np.einsum("ij,ij->i", p[tri[:, 0]], normal)  # (N, planes)
    below, above = (dist <= tol).all(axis=0), (dist >= -tol).all(axis=0)
    centre = p.mean(axis=0)
    volume, seen = 0.0, set()
    for f in np.flatnonzero(below | above):
        on_plane = frozenset(np.flatnonzero(np.abs(dist[:, f]) <= tol).tolist())
        if on_plane in seen:
            continue
        seen.add(on_plane)
        n = normal[f] if below[f] else -normal[f]  # outward
        u = p[tri[f, 1]] - p[tri[f, 0]]
        u = u / np.linalg.norm(u)
        v = np.cross(n, u)
        face = p[sorted(on_plane)]
        area = _polygon_area(np.stack([face @ u, face @ v], axis=1))
        height = float(np.dot(p[tri[f, 0]] - centre, n))
        volume += area * height / 3.0
    return volume
