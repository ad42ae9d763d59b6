"""Accuracy against simulator truth.

Point classes: per-class precision, recall and F1 and a confusion matrix.
Classified points are matched to the truth by their pulse identity (drive,
scanner channel, GPS time, return number), so files whose point order changed
(tiles, merged drives) are evaluated correctly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ._atomic import write_text_atomic
from .classes import Class
from .errors import ConfigError, InputFileNotFoundError
from .io import iter_chunks

__all__ = ["POINT_GROUPS", "point_metrics", "evaluate_points", "load_truth_points", "write_metrics", "format_metrics"]

logger = logging.getLogger(__name__)

#: Evaluated classes and the codes each stands for.
POINT_GROUPS = {
    "ground": (Class.GROUND,),
    "road_surface": (Class.ROAD_SURFACE,),
    "ground_or_road": (Class.GROUND, Class.ROAD_SURFACE),
    "curb": (Class.CURB,),
    "road_marking": (Class.ROAD_MARKING,),
    "noise": (Class.LOW_NOISE, Class.HIGH_NOISE),
    "low_noise": (Class.LOW_NOISE,),
    "high_noise": (Class.HIGH_NOISE,),
}


def class_counts(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The 256 x 256 confusion counts (rows: true class, columns: predicted); they add up over parts."""
    truth = np.asarray(truth, dtype=np.uint8)
    predicted = np.asarray(predicted, dtype=np.uint8)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth and prediction differ in length: {truth.shape} vs {predicted.shape}")
    return np.bincount(truth.astype(np.int64) * 256 + predicted, minlength=256 * 256).reshape(256, 256)


def point_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Precision, recall, F1 and support per group of :data:`POINT_GROUPS`, plus the confusion matrix.

    A metric with no positives (nothing predicted, or nothing true) is None.
    """
    return metrics_from_counts(class_counts(truth, predicted))


def metrics_from_counts(counts: np.ndarray) -> dict:
    """:func:`point_metrics` from summed :func:`class_counts` (e.g. of the tiles of a batch run)."""
    counts = np.asarray(counts, dtype=np.int64)
    out = {}
    for name, codes in POINT_GROUPS.items():
        t = np.zeros(256, bool)
        t[list(codes)] = True
        tp = int(counts[np.ix_(t, t)].sum())
        npred, ntrue = int(counts[:, t].sum()), int(counts[t, :].sum())
        prec = tp / npred if npred else None
        rec = tp / ntrue if ntrue else None
        f1 = (2 * prec * rec / (prec + rec)) if (prec and rec) else (0.0 if (npred and ntrue) else None)
        out[name] = {"precision": prec, "recall": rec, "f1": f1, "support": ntrue, "predicted": npred}
    labels = np.flatnonzero(counts.sum(axis=1) + counts.sum(axis=0)).tolist()
    cm = counts[np.ix_(labels, labels)]
    out["confusion"] = {"labels": labels, "rows_truth_cols_predicted": cm.tolist()}
    out["count"] = int(counts.sum())
    return out


def _keys(cloud) -> np.ndarray:
    """One sortable record per pulse return: drive, channel, time, return number."""
    a = cloud.attrs
    n = len(cloud)
    rec = np.empty(n, dtype=[("src", "<u2"), ("ch", "u1"), ("t", "<f8"), ("ret", "u1")])
    rec["src"] = a.get("point_source_id", np.zeros(n, np.uint16))
    rec["ch"] = a.get("scanner_channel", np.zeros(n, np.uint8))
    rec["t"] = a["gps_time"]
    rec["ret"] = a.get("return_number", np.zeros(n, np.uint8))
    return rec


def _key_order(keys: np.ndarray) -> np.ndarray:
    """Stable order of pulse keys by (drive, channel, time, return); lexsort is many times faster than a
    structured argsort on tens of millions of records."""
    return np.lexsort((keys["ret"], keys["t"], keys["ch"], keys["src"]))


def _match(tkeys: np.ndarray, pkeys: np.ndarray) -> np.ndarray:
    """Index into *tkeys* (unique keys) of each of *pkeys*, -1 where there is none.

    One lexsort of both sets, truth first among equals: a point's truth is its
    predecessor in that order (structured ``searchsorted`` is slow).
    """
    nt = len(tkeys)
    allk = np.concatenate([tkeys, pkeys])
    tag = np.concatenate([np.zeros(nt, np.int8), np.ones(len(pkeys), np.int8)])
    order = np.lexsort((tag, allk["ret"], allk["t"], allk["ch"], allk["src"]))
    s = allk[order]
    same = np.zeros(len(order), bool)
    if len(order) > 1:
        same[1:] = True
        for f in ("src", "ch", "t", "ret"):
            same[1:] &= s[f][1:] == s[f][:-1]
    prev = np.empty_like(order)
    prev[0] = -1
    prev[1:] = order[:-1]
    is_p = order >= nt
    hit = is_p & same & (prev < nt) & (prev >= 0)
    pos = np.full(len(pkeys), -1, np.int64)
    pos[order[is_p] - nt] = np.where(hit[is_p], prev[is_p], -1)
    return pos


def load_truth_points(sim_dir) -> tuple[np.ndarray, np.ndarray]:
    """Keys and true classes of every simulated point, sorted by key."""
    sim_dir = Path(sim_dir)
    tdir = sim_dir / "truth"
    if not tdir.is_dir():
        raise InputFileNotFoundError(tdir, "truth directory (written by hdmap simulate)")
    keys, classes = [], []
    k = 0
    while (sim_dir / f"drive_{k}.laz").exists():
        cls_path = tdir / f"classes_{k}.npy"
        if not cls_path.exists():
            raise InputFileNotFoundError(cls_path, "truth class file")
        cls = np.load(cls_path)
        n0 = 0
        for chunk in iter_chunks(sim_dir / f"drive_{k}.laz"):
            keys.append(_keys(chunk))
            classes.append(cls[n0:n0 + len(chunk)])
            n0 += len(chunk)
        if n0 != len(cls):
            raise ConfigError(f"{cls_path}: {len(cls)} classes for {n0} points in drive_{k}.laz; truth and drive differ")
        k += 1
    if k == 0:
        raise InputFileNotFoundError(sim_dir / "drive_0.laz", "simulated drive")
    keys = np.concatenate(keys)
    classes = np.concatenate(classes)
    order = _key_order(keys)
    return keys[order], classes[order]


def evaluate_points(sim_dir, classified) -> dict:
    """Point metrics of classified LAZ file(s) against the truth of a simulation directory."""
    tkeys, tcls = load_truth_points(sim_dir)
    paths = [classified] if isinstance(classified, (str, Path)) else list(classified)
    pk, pc = [], []
    for path in paths:
        for chunk in iter_chunks(path):
            if "gps_time" not in chunk.attrs:
                raise ConfigError(f"{path}: no GPS time; cannot match points to the truth")
            pk.append(_keys(chunk))
            pc.append(chunk.attrs["classification"].astype(np.uint8))
    pkeys = np.concatenate(pk)
    pcls = np.concatenate(pc)
    pos = _match(tkeys, pkeys)
    ok = pos >= 0
    if not ok.all():
        raise ConfigError(
            f"{int((~ok).sum())} of {len(pkeys)} classified points have no counterpart in {sim_dir}; "
            "evaluate a classification of that simulation"
        )
    metrics = point_metrics(tcls[pos], pcls)
    metrics["coverage"] = len(pkeys) / len(tkeys)
    return metrics


def write_metrics(path, metrics: dict) -> Path:
    return write_text_atomic(path, json.dumps(metrics, indent=2, sort_keys=False) + "\n")


def format_metrics(metrics: dict) -> str:
    """A small table of precision / recall / F1 per evaluated class."""

    def f(v):
        return "   -  " if v is None else f"{v:6.4f}"

    lines = [f"{'class':15s} {'precision':>9s} {'recall':>9s} {'F1':>9s} {'truth pts':>11s}"]
    for name in POINT_GROUPS:
        m = metrics[name]
        lines.append(f"{name:15s} {f(m['precision']):>9s} {f(m['recall']):>9s} {f(m['f1']):>9s} {m['support']:>11,d}")
    return "\n".join(lines)
