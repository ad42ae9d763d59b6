"""Preview images of simulated drives: intensity seen from above, truth drawn over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._atomic import atomic_path

__all__ = ["render_preview"]

_COLORS = {"line_thin": "#00e5ff", "line_thick": "#ffea00", "curbstone": "#ff3d00", "road_border": "#ff9100",
           "virtual": "#9e9e9e"}


def _lines(scene, kinds=None):
    """Truth polylines (world xy) with their kind."""
    E0, N0 = scene.origin
    roads = {r.spec.id: r for r in scene.roads}
    out = []
    for b in scene.boundaries:
        if b["kind"] == "virtual":
            continue
        road = roads[b["road"]]
        s = np.linspace(b["s0"], b["s1"], max(int((b["s1"] - b["s0"]) / 1.0), 1) + 1)
        x, y = road.ref.point(s, np.full(len(s), b["t"]))
        out.append((x + E0, y + N0, b["kind"]))
    for c in scene.curbs:
        road = roads[c["road"]]
        if "xyz" in c:
            out.append((c["xyz"][:, 0] + E0, c["xyz"][:, 1] + N0, c["kind"]))
            continue
        s = np.linspace(c["s0"], c["s1"], max(int((c["s1"] - c["s0"]) / 1.0), 1) + 1)
        x, y = road.ref.point(s, np.full(len(s), c["t"]))
        out.append((x + E0, y + N0, c["kind"]))
    return out


def render_preview(scene, overview, zoom, focus, path: Path, dpi: int = 100) -> Path:
    """Two panels: the whole drive and a 60 m window around *focus*, log-intensity in grey."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lines = _lines(scene)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=dpi, gridspec_kw={"width_ratios": [1, 1.25]})
    for ax, raster, title in ((axes[0], overview, "whole drive"), (axes[1], zoom, "zoom (60 m)")):
        img = raster.image()
        finite = img[np.isfinite(img)]
        vmin, vmax = (np.percentile(finite, [2, 99.5]) if finite.size else (0, 1))
        extent = (raster.x0, raster.x0 + raster.nx * raster.res, raster.y0, raster.y0 + raster.ny * raster.res)
        ax.imshow(np.ma.masked_invalid(img), origin="lower", extent=extent, cmap="gray", vmin=vmin, vmax=vmax,
                  interpolation="nearest")
        for x, y, kind in lines:
            ax.plot(x, y, color=_COLORS.get(kind, "w"), lw=0.6 if raster is overview else 0.9, alpha=0.85)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(useOffset=False, style="plain")
    handles = [plt.Line2D([], [], color=c, lw=1.5, label=k) for k, c in _COLORS.items() if k != "virtual"]
    axes[1].legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.8)
    fig.suptitle(f"{scene.description.name}: intensity (log) with ground-truth lines, EPSG:25832", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
