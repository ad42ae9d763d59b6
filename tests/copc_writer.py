"""Write small COPC files for tests with copclib (the COPC reference library).

The octree is built here: points go to the deepest level whose cells hold at
most ``max_per_node`` points, each node written as its own LAZ chunk.
"""

from __future__ import annotations

import laspy
import numpy as np


def write_copc(path, xyz, *, intensity=None, crs=None, max_per_node=4000, scale=0.001):
    import copclib

    xyz = np.asarray(xyz, dtype=np.float64)
    n = len(xyz)
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    center = (lo + hi) / 2
    half = float((hi - lo).max() / 2 + 1.0)
    offset = np.floor(lo)

    cfg = copclib.CopcConfigWriter(
        6, copclib.Vector3(scale, scale, scale), copclib.Vector3(*offset), crs.to_wkt() if crs is not None else ""
    )
    info = cfg.copc_info
    info.center_x, info.center_y, info.center_z = map(float, center)
    info.halfsize = half
    info.spacing = 2 * half / 128
    hdr = cfg.las_header
    hdr.min = copclib.Vector3(*lo)
    hdr.max = copclib.Vector3(*hi)

    # as real COPC writers do: each node keeps a subsample of at most max_per_node
    # points of its cell; the rest go one level down (so every ancestor is filled)
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([scale] * 3)
    header.offsets = offset
    remaining = np.random.default_rng(0).permutation(n)
    level = 0
    assignments = []
    while len(remaining):
        cells = 2**level
        size = 2 * half / cells
        ijk = np.clip(np.floor((xyz[remaining] - (center - half)) / size).astype(np.int64), 0, cells - 1)
        keys, inverse = np.unique(ijk, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(len(keys)))
        rank = np.empty(len(remaining), dtype=np.int64)
        rank[order] = np.arange(len(remaining)) - starts[inverse[order]]
        keep = (rank < max_per_node) | (level == 20)
        for k in np.unique(inverse[keep]):
            assignments.append(((level, *keys[k].tolist()), remaining[keep & (inverse == k)]))
        remaining = remaining[~keep]
        level += 1

    writer = copclib.FileWriter(str(path), cfg)
    for key, members in sorted(assignments, key=lambda a: a[0]):
        rec = laspy.ScaleAwarePointRecord.zeros(len(members), header=header)
        if len(members):
            rec.x, rec.y, rec.z = xyz[members, 0], xyz[members, 1], xyz[members, 2]
            rec.return_number = np.ones(len(members), np.uint8)
            rec.number_of_returns = np.ones(len(members), np.uint8)
            if intensity is not None:
                rec.intensity = intensity[members]
        data = copclib.VectorChar(np.frombuffer(rec.array.tobytes(), dtype=np.int8))
        writer.AddNode(copclib.VoxelKey(*key), data)
    writer.Close()
