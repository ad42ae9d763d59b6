"""Plan-view geometry of ASAM OpenDRIVE: evaluation of the primitives and fitting them to polylines.

A :class:`Geometry` is one ``<geometry>`` record of a road's ``<planView>``: start
``s``, start point ``x, y``, start heading ``hdg``, ``length`` and a ``kind`` with
its parameters:

- ``line`` (no parameters);
- ``arc`` (``curvature``);
- ``spiral`` (``curvStart``, ``curvEnd``: curvature linear in s, a clothoid);
- ``poly3`` (``a, b, c, d``: v(u) in the local u/v frame, read only);
- ``paramPoly3`` (``aU .. dU, aV .. dV`` and ``pRange`` ``arcLength`` or ``normalized``).

Spirals are evaluated by Gauss-Legendre quadrature of ``cos``/``sin`` of the
(quadratic) heading, exact to ~1e-12 m for road-like curvatures; the unit tests
compare them with the Fresnel-integral form (:func:`scipy.special.fresnel`).

:func:`fit_plan_view` fits a chain of primitives to a polyline: greedy, from the
start, each primitive starting at the end point and end heading of the previous
one (G1 continuous), and reaching as far along the polyline as it stays within
``tolerance`` (normal distance of every data point). Lines, arcs and spirals are
preferred; a ``paramPoly3`` (``pRange="arcLength"``, its ``length`` equal to its
arc length) is used where none of them reaches at least 60 % as far.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

__all__ = ["Geometry", "eval_geometry", "eval_plan_view", "fit_plan_view", "fit_cubics", "eval_cubics",
           "densify"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)


@dataclass
class Geometry:
    """One plan-view geometry record (see the module documentation)."""

    kind: str
    s: float
    x: float
    y: float
    hdg: float
    length: float
    params: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------
def _clothoid_local(ds: np.ndarray, k0: float, c: float):
    """Points (u, v) and heading of a curve with curvature k0 + c*s from the origin along +u."""
    ds = np.asarray(ds, dtype=np.float64)
    if ds.size == 0:
        return ds.copy(), ds.copy(), ds.copy()
    (u, v), = _heading_integrals(ds, k0, c, 0)
    return u, v, k0 * ds + c * ds * ds / 2


def _heading_integrals(ds: np.ndarray, k0: float, c: float, order: int) -> list:
    """``[(∫ t^m/m! cos θ, ∫ t^m/m! sin θ) for m in 0..order]`` over [0, ds], θ = k0 t + c t² / 2, by
    Gauss-Legendre on 1 m panels: m = 0 is the point of the clothoid, m = 1 and 2 its derivatives in k0
    and c (turned a quarter: ``(-sin, cos)``)."""
    smax = float(ds.max()) if ds.size else 0.0
    nk = max(1, int(np.ceil(smax / 1.0)))
    knots = np.linspace(0.0, smax, nk + 1)

    def integrate(a, b):
        half = (b - a)[:, None] / 2
        t = (a[:, None] + b[:, None]) / 2 + half * _GL_X[None, :]
        th = k0 * t + c * t * t / 2
        ct, st = np.cos(th) * _GL_W, np.sin(th) * _GL_W
        out, w = [], np.ones_like(t)
        for m in range(order + 1):
            if m:
                w = w * t / m
            out.append(((ct * w).sum(1) * half[:, 0], (st * w).sum(1) * half[:, 0]))
        return out

    whole = integrate(knots[:-1], knots[1:])
    i = np.clip(np.searchsorted(knots, ds, side="right") - 1, 0, nk - 1)
    part = integrate(knots[i], ds)
    res = []
    for (wu, wv), (pu, pv) in zip(whole, part):
        cu = np.concatenate([[0.0], np.cumsum(wu)])
        cv = np.concatenate([[0.0], np.cumsum(wv)])
        res.append((cu[i] + pu, cv[i] + pv))
    return res


def _param_curve(coef_u, coef_v, pmax: float, length: float, ds: np.ndarray, *, arclength_param: bool):
    """Local (u, v, heading) of a cubic parametric curve at arc-length-like positions ds."""
    pu = np.polynomial.Polynomial(coef_u)
    pv = np.polynomial.Polynomial(coef_v)
    if arclength_param:  # p = ds (the standard: p in [0, length] for pRange arcLength)
        p = np.asarray(ds, dtype=np.float64)
    else:
        p = np.asarray(ds, dtype=np.float64) / length * pmax
    du, dv = pu.deriv()(p), pv.deriv()(p)
    return pu(p), pv(p), np.arctan2(dv, du)


def _poly3_local(a, b, c, d, length: float, ds: np.ndarray):
    """Local (u, v, heading) of a poly3 v(u) at arc lengths ds (u found by arc-length integration)."""
    n = max(200, int(length * 20))
    u = np.linspace(0.0, length, n + 1)
    pv = np.polynomial.Polynomial([a, b, c, d])
    dv = pv.deriv()
    seg = np.hypot(np.diff(u), np.diff(pv(u)))
    sl = np.concatenate([[0.0], np.cumsum(seg)])
    uq = np.interp(ds, sl, u)
    return uq, pv(uq) - a, np.arctan2(dv(uq), 1.0)


def eval_geometry(g: Geometry, ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inertial x, y and heading at distances *ds* (0..length) from the start of *g*."""
    ds = np.asarray(ds, dtype=np.float64)
    if g.kind == "line":
        u, v, th = ds, np.zeros_like(ds), np.zeros_like(ds)
    elif g.kind == "arc":
        k = g.params["curvature"]
        chord = ds * np.sinc(k * ds / (2 * np.pi))
        u, v, th = chord * np.cos(k * ds / 2), chord * np.sin(k * ds / 2), k * ds
    elif g.kind == "spiral":
        k0, k1 = g.params["curvStart"], g.params["curvEnd"]
        u, v, th = _clothoid_local(ds, k0, (k1 - k0) / g.length)
    elif g.kind == "poly3":
        p = g.params
        u, v, th = _poly3_local(p["a"], p["b"], p["c"], p["d"], g.length, ds)
    elif g.kind == "paramPoly3":
        p = g.params
        arcl = p.get("pRange", "normalized") == "arcLength"
        u, v, th = _param_curve([p["aU"], p["bU"], p["cU"], p["dU"]], [p["aV"], p["bV"], p["cV"], p["dV"]],
                                1.0, g.length, ds, arclength_param=arcl)
    else:
        raise ValueError(f"unknown geometry kind {g.kind!r}")
    ch, sh = np.cos(g.hdg), np.sin(g.hdg)
    return g.x + u * ch - v * sh, g.y + u * sh + v * ch, g.hdg + th


def eval_plan_view(geoms: list[Geometry], s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, heading of a chain of geometries at road positions *s* (clamped to the chain)."""
    s = np.asarray(s, dtype=np.float64)
    starts = np.array([g.s for g in geoms])
    idx = np.clip(np.searchsorted(starts, s, side="right") - 1, 0, len(geoms) - 1)
    x, y, h = np.empty_like(s), np.empty_like(s), np.empty_like(s)
    for i in np.unique(idx):
        g = geoms[i]
        sel = idx == i
        x[sel], y[sel], h[sel] = eval_geometry(g, np.clip(s[sel] - g.s, 0.0, g.length))
    return x, y, h


# ----------------------------------------------------------------------------
# fitting
# ----------------------------------------------------------------------------
def densify(xy: np.ndarray, step: float) -> np.ndarray:
    """Insert vertices so that no segment of the polyline is longer than *step*."""
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = max(1, int(np.ceil(np.hypot(b[0] - a[0], b[1] - a[1]) / step)))
        t = np.arange(1, n + 1)[:, None] / n
        out.append(a + (b - a) * t)
    return np.vstack(out)


def _local(pts, x0, y0, h0):
    d = pts - [x0, y0]
    ch, sh = np.cos(h0), np.sin(h0)
    return d[:, 0] * ch + d[:, 1] * sh, -d[:, 0] * sh + d[:, 1] * ch


def _errors(uv_model, th_model, u, v):
    """Normal and tangential distance of data (u, v) from model points at the same positions."""
    du, dv = u - uv_model[0], v - uv_model[1]
    return np.abs(-du * np.sin(th_model) + dv * np.cos(th_model)), du * np.cos(th_model) + dv * np.sin(th_model)


def _rot(m, phi):
    mu, mv, th = m
    c, s = np.cos(phi), np.sin(phi)
    return mu * c - mv * s, mu * s + mv * c, th + phi


def _primitive(kind, ds, p):
    """Local (u, v, heading) of a primitive from the origin along +u; p = (k,) or (k0, c)."""
    if kind == "line":
        return ds, np.zeros_like(ds), np.zeros_like(ds)
    if kind == "arc":
        k = p[0]
        chord = ds * np.sinc(k * ds / (2 * np.pi))
        return chord * np.cos(k * ds / 2), chord * np.sin(k * ds / 2), k * ds
    return _clothoid_local(ds, p[0], p[1])


def _primitive_jacobian(kind, ds, p):
    """Jacobian of the residuals of :func:`_try` (the rotated primitive's u at every ds, then its v) in
    its parameters ``(phi, k)`` or ``(phi, k0, c)``: d/dphi rotates the point a quarter turn; d/dk0 and
    d/dc are the integrals of ``t`` and ``t^2 / 2`` times the normal ``(-sin, cos)`` of the heading up to
    ds (:func:`_heading_integrals`), rotated by phi."""
    k0, c = p[1], (p[2] if kind == "spiral" else 0.0)
    mu, mv, _ = _rot(_primitive(kind, ds, p[1:]), p[0])
    cols = [np.concatenate([-mv, mu])]
    cp, sp = np.cos(p[0]), np.sin(p[0])
    for ic, is_ in _heading_integrals(ds, k0, c, 2 if kind == "spiral" else 1)[1:]:
        nu, dv = -is_, ic
        cols.append(np.concatenate([nu * cp - dv * sp, nu * sp + dv * cp]))
    return np.column_stack(cols)


def _try(kind, ds, u, v):
    """Fit a primitive of *kind* from the origin to data (ds, u, v), its start heading free.

    Returns (start heading in the local frame, params, max normal error).
    """
    if kind == "paramPoly3":
        au = np.column_stack([ds, ds ** 2, ds ** 3])
        cu, *_ = np.linalg.lstsq(au, u, rcond=None)
        cv, *_ = np.linalg.lstsq(au, v, rcond=None)
        mu, mv = au @ cu, au @ cv
        th = np.arctan2(cv[0] + 2 * cv[1] * ds + 3 * cv[2] * ds ** 2, cu[0] + 2 * cu[1] * ds + 3 * cu[2] * ds ** 2)
        params = {"aU": 0.0, "bU": float(cu[0]), "cU": float(cu[1]), "dU": float(cu[2]),
                  "aV": 0.0, "bV": float(cv[0]), "cV": float(cv[1]), "dV": float(cv[2]), "pRange": "arcLength"}
        return 0.0, params, float(_errors((mu, mv), th, u, v)[0].max())
    # linear initial guess: v ~ phi ds + k ds^2/2 + c ds^3/6
    cols = {"line": [ds], "arc": [ds, ds * ds / 2], "spiral": [ds, ds * ds / 2, ds ** 3 / 6]}[kind]
    a = np.column_stack(cols)
    x0, *_ = np.linalg.lstsq(a, v, rcond=None)
    if kind == "line":  # the rotation of (ds, 0) closest to (u, v): in closed form
        x0 = np.array([np.arctan2(ds @ v, ds @ u)])
    elif len(ds) > len(x0) + 1:
        def res(p):
            mu, mv, _ = _rot(_primitive(kind, ds, p[1:]), p[0])
            return np.concatenate([mu - u, mv - v])

        def jac(p):
            return _primitive_jacobian(kind, ds, p)

        x0 = least_squares(res, x0, jac=jac, method="lm").x
    m = _rot(_primitive(kind, ds, x0[1:]), x0[0])
    err = float(_errors(m[:2], m[2], u, v)[0].max())
    if kind == "line":
        params = {}
    elif kind == "arc":
        params = {"curvature": float(x0[1])}
    else:
        params = {"curvStart": float(x0[1]), "curvEnd": float(x0[1] + x0[2] * ds[-1])}
    return float(x0[0]), params, err


def _arclength_poly(params, pmax):
    """Arc length of a paramPoly3 over p in [0, pmax] (Gauss-Legendre, 8 panels)."""
    du = np.polynomial.Polynomial([params["bU"], 2 * params["cU"], 3 * params["dU"]])
    dv = np.polynomial.Polynomial([params["bV"], 2 * params["cV"], 3 * params["dV"]])
    edges = np.linspace(0, pmax, 9)
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        t = (a + b) / 2 + (b - a) / 2 * _GL_X
        total += float((np.hypot(du(t), dv(t)) * _GL_W).sum() * (b - a) / 2)
    return total


def _reach(kind, pts, s, i, x0, y0, h0, tol):
    """Largest j > i such that a *kind* from (x0, y0, h0) fits pts[i..j] within tol; (j, params)."""
    n = len(pts)

    def fits(j):
        ds = s[i:j + 1] - s[i]
        u, v = _local(pts[i:j + 1], x0, y0, h0)
        phi, params, err = _try(kind, ds, u, v)
        return err <= tol, (phi, params)

    best = None
    lo = i + 1
    ok, p = fits(lo)
    if not ok:
        return i + 1, p, False
    best = (lo, p)
    step = 4
    hi = None
    while True:
        j = min(lo + step, n - 1)
        ok, p = fits(j)
        if ok:
            best = (j, p)
            lo = j
            if j == n - 1:
                return j, p, True
            step *= 2
        else:
            hi = j
            break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, p = fits(mid)
        if ok:
            lo, best = mid, (mid, p)
        else:
            hi = mid
    return best[0], best[1], True


def fit_plan_view(xy: np.ndarray, tolerance: float = 0.01, *, step: float = 0.5,
                  primitives: tuple = ("line", "arc", "spiral")) -> list[Geometry]:
    """Fit a G1-continuous chain of line/arc/spiral/paramPoly3 geometries to a polyline.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        The polyline (n >= 2), vertices in order.
    tolerance : float
        Largest allowed normal distance (m) of a (densified) polyline vertex from the fitted curve.
    step : float
        The polyline is densified to vertices at most *step* apart before fitting.
    primitives : tuple of str
        The primitives tried before falling back to ``paramPoly3`` (``()``: paramPoly3 only).

    Returns
    -------
    list of Geometry
        ``s`` starting at 0; each start point and heading is the end of the previous one.
    """
    tol = 0.8 * tolerance  # margin for the s drift between fitted curve and polyline
    pts = densify(np.asarray(xy, dtype=np.float64)[:, :2], step)
    keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-9])
    pts = pts[keep]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    n = len(pts)
    # start heading from a quadratic fit over the first few metres
    m = int(np.clip(np.searchsorted(s, 3.0), 2, n - 1))
    if m >= 2:
        cx = np.polyfit(s[:m + 1], pts[:m + 1, 0], min(2, m))
        cy = np.polyfit(s[:m + 1], pts[:m + 1, 1], min(2, m))
        h0 = float(np.arctan2(np.polyval(np.polyder(cy), 0.0), np.polyval(np.polyder(cx), 0.0)))
    else:
        h0 = float(np.arctan2(*(pts[1] - pts[0])[::-1]))
    x0, y0 = float(pts[0, 0]), float(pts[0, 1])
    geoms: list[Geometry] = []
    i, s_road = 0, 0.0
    while i < n - 1:
        reach = {}
        for kind in (*primitives, "paramPoly3"):
            j, params, ok = _reach(kind, pts, s, i, x0, y0, h0, tol)
            reach[kind] = (j, params, ok)
        simple = max(primitives, key=lambda k: (reach[k][0] if reach[k][2] else -1, -primitives.index(k))) \
            if primitives else None
        if simple is not None and reach[simple][2] and (reach[simple][0] - i) >= 0.6 * (reach["paramPoly3"][0] - i):
            kind = simple
        else:
            kind = "paramPoly3"
        j, (phi, params), _ = reach[kind]
        ds = s[i:j + 1] - s[i]
        length = float(ds[-1])
        hdg = h0 + phi
        if kind == "paramPoly3":
            arcl = _arclength_poly(params, length)
            r = length / arcl  # reparametrise so that p runs over [0, arc length]
            params.update(bU=params["bU"] * r, cU=params["cU"] * r * r, dU=params["dU"] * r ** 3,
                          bV=params["bV"] * r, cV=params["cV"] * r * r, dV=params["dV"] * r ** 3)
            length = arcl
        g = Geometry(kind, s_road, x0, y0, hdg, length, params)
        # the end is the projection of the last data point onto the curve (keeps s in step with the data)
        ex, ey, eh = eval_geometry(g, np.array([length]))
        tang = (pts[j, 0] - ex[0]) * np.cos(eh[0]) + (pts[j, 1] - ey[0]) * np.sin(eh[0])
        if kind != "paramPoly3" and abs(tang) < 0.5 * length:
            if kind == "spiral":
                c = (params["curvEnd"] - params["curvStart"]) / length
                params["curvEnd"] = params["curvStart"] + c * (length + tang)
            g.length = length + tang
        ex, ey, eh = eval_geometry(g, np.array([g.length]))
        geoms.append(g)
        s_road += g.length
        x0, y0, h0 = float(ex[0]), float(ey[0]), float(eh[0])
        i = j
    return geoms


# ----------------------------------------------------------------------------
# cubic polynomials along s (elevation, lane widths)
# ----------------------------------------------------------------------------
def _cubic_through_ends(ds, w):
    """Cubic a + b ds + c ds^2 + d ds^3 through both end values, least squares in between."""
    L = ds[-1]
    a = w[0]
    if len(ds) <= 2 or L <= 0:
        return np.array([a, (w[-1] - a) / L if L > 0 else 0.0, 0.0, 0.0])
    # w - a - (w_end - a) ds/L = c (ds^2 - L ds) + d (ds^3 - L^2 ds)
    r = w - a - (w[-1] - a) * ds / L
    basis = np.column_stack([ds * ds - L * ds, ds ** 3 - L * L * ds])
    (c, d), *_ = np.linalg.lstsq(basis, r, rcond=None)
    b = (w[-1] - a) / L - c * L - d * L * L
    return np.array([a, b, c, d])


def fit_cubics(s: np.ndarray, w: np.ndarray, tolerance: float) -> list[tuple[float, np.ndarray]]:
    """Piecewise cubics through samples (s, w), within *tolerance* at every sample, continuous.

    Every piece passes exactly through the sample values at its two ends, so
    consecutive pieces meet. Returns ``[(s_start, [a, b, c, d]), ...]``.
    """
    s = np.asarray(s, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    pieces = []
    i, n = 0, len(s)
    while i < n - 1:
        def ok(j):
            ds = s[i:j + 1] - s[i]
            coef = _cubic_through_ends(ds, w[i:j + 1])
            return np.abs(np.polynomial.polynomial.polyval(ds, coef) - w[i:j + 1]).max() <= tolerance, coef

        lo, (good, coef) = i + 1, ok(i + 1)
        best = coef
        step, hi = 4, None
        while True:
            j = min(lo + step, n - 1)
            if j == lo:
                break
            good, c2 = ok(j)
            if good:
                lo, best = j, c2
                step *= 2
                if j == n - 1:
                    break
            else:
                hi = j
                break
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            good, c2 = ok(mid)
            if good:
                lo, best = mid, c2
            else:
                hi = mid
        pieces.append((float(s[i]), best))
        i = lo
    return pieces


def eval_cubics(pieces, s) -> np.ndarray:
    """Evaluate ``[(s_start, [a, b, c, d]), ...]`` at *s* (each piece from its start on)."""
    s = np.asarray(s, dtype=np.float64)
    starts = np.array([p[0] for p in pieces])
    idx = np.clip(np.searchsorted(starts, s, side="right") - 1, 0, len(pieces) - 1)
    out = np.empty_like(s)
    for i in np.unique(idx):
        sel = idx == i
        out[sel] = np.polynomial.polynomial.polyval(s[sel] - starts[i], pieces[i][1])
    return out
