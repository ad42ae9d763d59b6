"""ASAM OpenDRIVE export and reader: schema, ASAM checker, geometry accuracy, georeferencing, I/O."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from lxml import etree
from scipy.special import fresnel

from hdmap import LaneMap
from hdmap.export import export
from hdmap.export._odr_geometry import Geometry, eval_geometry, eval_plan_view, fit_cubics, eval_cubics, fit_plan_view
from hdmap.export.opendrive import OpenDriveExportError, PROJ_25832, _extend, read_opendrive, write_opendrive
from hdmap.lanemap import Boundary, InvalidMapError, Lane

sys.path.insert(0, str(Path(__file__).parent))
from conftest import truth_map  # noqa: E402

DATA = Path(__file__).parent / "data" / "opendrive"
THIRD_PARTY = ("fabriksgatan.xodr", "curves_elevation.xodr", "unittest_roadmarks.xodr",
               "asam_Ex_Line-Spiral-Arc.xodr", "CARLA_Town01.xodr")
TRUTH = ("urban", "tempus-b13", "motorway", "junction")
MAX_BORDER_DEVIATION = 0.02  # m


# --------------------------------------------------------------------------
# the ASAM tools (checker and XSDs) from the tools venv
# --------------------------------------------------------------------------
def _qc_exe() -> Path:
    exe = os.environ.get("HDMAP_QC_OPENDRIVE")
    path = Path(exe) if exe else Path(__file__).resolve().parents[1] / ".venv-tools" / "bin" / "qc_opendrive"
    if not path.exists():
        pytest.fail(f"ASAM checker qc_opendrive not found at {path}; run `make test` (it creates .venv-tools)")
    return path


def _schema_dir(version: str) -> Path:
    venv = _qc_exe().resolve().parent.parent if not os.environ.get("HDMAP_QC_OPENDRIVE") \
        else Path(os.environ["HDMAP_QC_OPENDRIVE"]).parent.parent
    found = sorted(venv.glob("lib/python3*/site-packages/qc_opendrive/schema"))
    if not found:
        pytest.fail(f"no qc_opendrive/schema directory in {venv}; run `make test` (it creates .venv-tools)")
    return found[0] / {"1.8": "1.8.0", "1.6": "1.6.1"}[version]


@functools.lru_cache(maxsize=None)
def _schema(version: str):
    import xmlschema

    d = _schema_dir(version)
    if version == "1.8":
        return xmlschema.XMLSchema11(str(d / "OpenDRIVE_Core.xsd"))
    return xmlschema.XMLSchema11(str(d / "opendrive_16_core.xsd"))


def assert_schema_valid(path: Path, version: str):
    errors = [f"{e.path}: {e.reason}" for e in _schema(version).iter_errors(str(path))]
    assert not errors, f"{path} is not valid against the OpenDRIVE {version} XSD:\n" + "\n".join(errors[:20])


def qc_issues(path: Path, tmp: Path) -> list[str]:
    """Issues (and checker errors) the ASAM checker reports for *path*, all checks enabled."""
    exe = _qc_exe()
    result = tmp / f"{path.stem}.xqar"
    cfg = tmp / f"{path.stem}_qc.xml"
    root = etree.Element("Config")
    etree.SubElement(root, "Param", name="InputFile", value=str(path))
    bundle = etree.SubElement(root, "CheckerBundle", application="xodrBundle")
    etree.SubElement(bundle, "Param", name="resultFile", value=str(result))
    cfg.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    proc = subprocess.run([str(exe), "-c", str(cfg)], capture_output=True, text=True, cwd=tmp, timeout=300)
    assert proc.returncode == 0 and result.exists(), f"qc_opendrive failed:\n{proc.stdout}\n{proc.stderr}"
    rep = etree.parse(str(result)).getroot()
    out = []
    for checker in rep.iter("Checker"):
        if checker.get("status") == "error":
            out.append(f"{checker.get('checkerId')}: checker error: {checker.get('summary')}")
        for issue in checker.iter("Issue"):
            locs = [loc.get("xpath") for loc in issue.iter("XMLLocation")]
            out.append(f"{checker.get('checkerId')} [{issue.get('level')}]: {issue.get('description')} {locs[:2]}")
    assert len(list(rep.iter("Checker"))) >= 20, "the checker ran fewer checks than expected"
    return out


# --------------------------------------------------------------------------
# accuracy helpers
# --------------------------------------------------------------------------
def border_deviation(m: LaneMap, back: LaneMap) -> tuple[float, int]:
    """Largest horizontal distance of a read-back border sample from the LaneMap boundary it came from."""
    src = {b.id: shapely.LineString(b.xyz[:, :2]) for b in m.boundaries}
    worst, n = 0.0, 0
    for b in back.boundaries:
        sid = b.provenance.get("opendrive", {}).get("boundary")
        if sid is None:
            continue
        assert sid in src, f"{b.id} names unknown source boundary {sid!r}"
        pts = shapely.points(b.xyz[:, :2])
        # only samples beside the boundary: a border runs on where a painted line stops short of the lane end
        along = shapely.line_locate_point(src[sid], pts)
        beside = (along > 1e-6) & (along < src[sid].length - 1e-6)
        if beside.any():
            worst = max(worst, float(shapely.distance(src[sid], pts[beside]).max()))
        n += 1
    return worst, n


def geo_points(path: Path):
    """Planview start points of the file, transformed with its offset and geoReference to EPSG:25832."""
    root = etree.parse(str(path)).getroot()
    proj = root.find("header/geoReference").text.strip()
    off = root.find("header/offset")
    ox, oy, hdg = float(off.get("x")), float(off.get("y")), float(off.get("hdg"))
    pts = []
    for road in root.findall("road"):
        for g in road.findall("planView/geometry"):
            x, y = float(g.get("x")), float(g.get("y"))
            # ASAM OpenDRIVE 1.8, 8.5: xWorld = xODR cos(hdg) - yODR sin(hdg) + xOffset, ...
            pts.append((road.get("id"), x * math.cos(hdg) - y * math.sin(hdg) + ox,
                        x * math.sin(hdg) + y * math.cos(hdg) + oy, road))
    to_ll = pyproj.Transformer.from_crs(pyproj.CRS.from_proj4(proj), "EPSG:4326", always_xy=True)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True)
    out = []
    for rid, x, y, road in pts:
        lon, lat = to_ll.transform(x, y)
        out.append((rid, *to_utm.transform(lon, lat), road))
    return proj, out


def check_export(m: LaneMap, name: str, tmp: Path) -> dict:
    """All checks on the export of *m*: XSD, ASAM checker, border accuracy, georeference, round trip."""
    out = write_opendrive(m, tmp / f"{name}.xodr")
    assert_schema_valid(out, "1.8")
    issues = qc_issues(out, tmp)
    assert not issues, f"{name}: the ASAM checker reports {len(issues)} issue(s):\n" + "\n".join(issues[:30])
    back = read_opendrive(out)
    dev, n = border_deviation(m, back)
    assert n >= len(m.lanes), f"{name}: only {n} read-back borders trace to a map boundary"
    assert dev <= MAX_BORDER_DEVIATION, f"{name}: a lane border deviates {dev:.4f} m from its boundary"
    # georeference: the start of every road's reference line lies on its centre-lane boundary
    proj, pts = geo_points(out)
    assert proj == PROJ_25832
    src = {b.id: b for b in m.boundaries}
    checked = 0
    # the first road's start point: on its first section's centre boundary, or on that boundary's straight
    # extension where lanes of the other direction begin before it (as the writer extends it)
    for rid, x, y, road in pts[:1]:
        center = road.find("lanes/laneSection/center/lane/roadMark/userData[@code='hdmap:boundary']")
        if center is None:
            continue
        d = shapely.LineString(_extend(src[center.get("value")].xyz, 50.0)[:, :2]).distance(shapely.Point(x, y))
        assert d <= 0.01, f"{name}: road {rid} starts {d:.4f} m from its reference boundary after geo transform"
        checked += 1
    assert checked >= 1, f"{name}: no road's reference line names the boundary it came from"
    # the read-back map is valid and writes as GeoPackage
    back.to_gpkg(tmp / f"{name}_back.gpkg")
    assert LaneMap.from_gpkg(tmp / f"{name}_back.gpkg") == back
    return {"deviation": dev, "borders": n}


# --------------------------------------------------------------------------
# exports of the simulator's truth maps and of an extracted map
# --------------------------------------------------------------------------
@pytest.mark.parametrize("preset", TRUTH)
def test_truth_map_export_valid_accurate(preset, tmp_path):
    m = truth_map(preset)
    res = check_export(m, preset, tmp_path)
    print(f"{preset}: max border deviation {res['deviation']:.4f} m over {res['borders']} borders")


def test_extracted_map_export(extracted, tmp_path):
    name, m, res_dir, _ = extracted
    res = check_export(m, f"extracted_{name}", tmp_path)
    print(f"extracted {name}: max border deviation {res['deviation']:.4f} m over {res['borders']} borders")
    # export() through the result directory gives the same bytes
    out = export(res_dir, "opendrive", tmp_path / "via_export" / f"extracted_{name}.xodr")
    assert out.read_bytes() == (tmp_path / f"extracted_{name}.xodr").read_bytes()


def test_version_16_validates(tmp_path):
    m = truth_map("tempus-b13")
    out = write_opendrive(m, tmp_path / "b13_16.xodr", version="1.6")
    root = etree.parse(str(out)).getroot()
    assert (root.find("header").get("revMajor"), root.find("header").get("revMinor")) == ("1", "6")
    assert_schema_valid(out, "1.6")
    issues = qc_issues(out, tmp_path)
    assert not issues, "\n".join(issues)
    import xmlschema

    with pytest.raises(xmlschema.XMLSchemaValidationError):  # the 1.8 file is not a 1.6 file: the schemas differ
        _schema("1.6").validate(str(write_opendrive(m, tmp_path / "b13_18.xodr")))
    with pytest.raises(OpenDriveExportError, match="version"):
        write_opendrive(m, tmp_path / "x.xodr", version="1.5")


# --------------------------------------------------------------------------
# content: lanes, road marks, objects
# --------------------------------------------------------------------------
def test_content_tempus(tmp_path):
    m = truth_map("tempus-b13")
    out = write_opendrive(m, tmp_path / "b13.xodr")
    root = etree.parse(str(out)).getroot()
    marks = {(rm.get("type"), rm.get("weight")) for rm in root.iter("roadMark")}
    assert ("broken", "standard") in marks and ("curb", None) in marks and ("none", None) in marks
    # dashed lines carry their measured dash and gap lengths
    lines = {(ln.get("length"), ln.get("space")) for ln in root.iter("line")}
    assert ("3.0", "6.0") in lines and ("3.0", "3.0") in lines
    types = {ln.get("type") for ln in root.iter("lane")}
    assert {"driving", "median", "curb"} <= types
    objs = [(o.get("type"), o.get("subtype")) for o in root.iter("object")]
    assert objs.count(("crosswalk", None)) == 4 and objs.count(("roadMark", "stopLine")) == 4
    back = read_opendrive(out)
    assert sum(mk.type == "crosswalk" for mk in back.markings) == 4
    assert sum(mk.type == "stop_line" for mk in back.markings) == 4
    # every LaneMap lane is in the file, and lane links follow the LaneMap
    lane_ids = {u.get("value") for u in root.iter("userData") if u.get("code") == "hdmap:lane"}
    assert lane_ids == {ln.id for ln in m.lanes}
    assert len(back.lanes) >= len(m.lanes)
    linked = sum(bool(ln.successors) for ln in back.lanes)
    assert linked >= len([ln for ln in m.lanes if ln.successors and ln.road == "b13"])
    # crosswalk polygons come back where they were
    cw = {mk.id: mk for mk in m.markings if mk.type == "crosswalk"}
    for mk in (mk for mk in back.markings if mk.type == "crosswalk"):
        poly = shapely.Polygon(mk.polygon[:, :2])
        best = min(shapely.Polygon(c.polygon[:, :2]).symmetric_difference(poly).area for c in cw.values())
        assert best < 0.01


def test_directions_and_patterns(tmp_path):
    m = truth_map("motorway")
    out = write_opendrive(m, tmp_path / "mw.xodr")
    back = read_opendrive(out)
    # 3 + 3 driving lanes, forward ones on the right of the reference line
    assert sorted(ln.direction for ln in back.lanes) == ["backward"] * 3 + ["forward"] * 3
    kinds = {(b.kind, b.pattern) for b in back.boundaries}
    assert ("line_thick", "solid") in kinds and ("line_thin", "dashed") in kinds and ("road_border", None) in kinds
    dashed = [b for b in back.boundaries if b.pattern == "dashed"]
    assert all((b.stroke_m, b.gap_m) == (6.0, 12.0) for b in dashed)
    root = etree.parse(str(out)).getroot()
    assert {"shoulder", "border"} <= {ln.get("type") for ln in root.iter("lane")}


# --------------------------------------------------------------------------
# determinism, atomicity, escaping, errors
# --------------------------------------------------------------------------
def test_deterministic_bytes(tmp_path):
    m = truth_map("tempus-b13")
    a = write_opendrive(m, tmp_path / "a" / "m.xodr").read_bytes()
    shuffled = truth_map("tempus-b13")
    for objs in (shuffled.boundaries, shuffled.lanes, shuffled.markings):
        objs.reverse()
    b = write_opendrive(shuffled, tmp_path / "b" / "m.xodr").read_bytes()
    assert a == b
    assert b"date=\"\"" in a  # no clock in the file


def test_atomic_write(tmp_path, monkeypatch):
    m = truth_map("urban")
    target = tmp_path / "m.xodr"
    target.write_bytes(b"old")
    import hdmap.export.opendrive as od

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(od.etree, "tostring", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_opendrive(m, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.xodr"]
    with pytest.raises(RuntimeError):
        write_opendrive(m, tmp_path / "new.xodr")
    assert not (tmp_path / "new.xodr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.xodr"]


def test_escaping(tmp_path):
    m = truth_map("urban")
    nasty = 'a<b>&"c\' ]]> ü'
    m.metadata = {"name": nasty, "date": "2024-01-01 <x>"}
    for ln in m.lanes:
        ln.road = nasty
    lid = m.lanes[0].id
    for ln in m.lanes:
        ln.predecessors = [nasty if p == lid else p for p in ln.predecessors]
        ln.successors = [nasty if p == lid else p for p in ln.successors]
    m.lanes[0].id = nasty
    out = write_opendrive(m, tmp_path / "esc.xodr")
    root = etree.parse(str(out)).getroot()
    assert root.find("header").get("name") == nasty
    assert root.find("road").get("name") == nasty
    assert nasty in {u.get("value") for u in root.iter("userData")}
    assert_schema_valid(out, "1.8")


def test_clear_errors(tmp_path):
    m = truth_map("urban")
    m.lanes[0].left = "missing"
    with pytest.raises(InvalidMapError, match="missing"):
        write_opendrive(m, tmp_path / "bad.xodr")
    with pytest.raises(OpenDriveExportError, match="no lanes"):
        write_opendrive(LaneMap([Boundary("b", [[0, 0, 0], [1, 0, 0]], "line_thin", pattern="solid")]),
                        tmp_path / "empty.xodr")
    with pytest.raises(OpenDriveExportError, match="tolerance"):
        write_opendrive(truth_map("urban"), tmp_path / "t.xodr", tolerance=0)
    assert not list(tmp_path.iterdir())


def test_lane_far_from_boundary(tmp_path, caplog):
    b1 = Boundary("b1", [[0, 0, 0], [50, 0, 0]], "line_thin", pattern="solid")
    b2 = Boundary("b2", [[0, 500, 0], [50, 500, 0]], "line_thin", pattern="solid")  # not beside the lane
    ln = Lane("l1", left="b2", right="b1", centerline=[[0, -1.5, 0], [50, -1.5, 0]], direction="forward",
              width=[3.0, 3.0])
    # the lane is written from its centre line and width, and the file says so
    out = write_opendrive(LaneMap([b1, b2], [ln]), tmp_path / "x.xodr")
    notes = [u.get("value") for u in etree.parse(str(out)).iter("userData") if u.get("code") == "hdmap:derived"]
    assert len(notes) == 1 and "l1" in notes[0] and "b2" in notes[0]
    assert "l1" in caplog.text
    back = read_opendrive(out)
    assert back.lanes[0].width == pytest.approx(3.0, abs=0.01)
    # a lane that cannot be written at all is named in the error
    bad = Lane("l2", left="b2", right="b1", centerline=[[5, 500, 0], [5, 500, 0]], direction="forward",
               width=[3.0, 3.0])
    with pytest.raises(OpenDriveExportError, match="'l2'"):
        write_opendrive(LaneMap([b1, b2], [bad]), tmp_path / "y.xodr")
    assert not (tmp_path / "y.xodr").exists()


# --------------------------------------------------------------------------
# geometry fitting
# --------------------------------------------------------------------------
def _clothoid(L, k0, k1, n, x0=0.0, y0=0.0, h0=0.0):
    """Points of a clothoid from the Fresnel integrals (independent of the module's quadrature)."""
    c = (k1 - k0) / L
    a = math.sqrt(math.pi / abs(c))
    s0 = k0 / c
    s = s0 + np.linspace(0, L, n)
    S, C = fresnel(s / a)
    S0, C0 = fresnel(s0 / a)
    u, v = a * (C - C0), math.copysign(a, c) * (S - S0)
    rot = h0 - c * s0 * s0 / 2
    return np.column_stack([x0 + u * math.cos(rot) - v * math.sin(rot), y0 + u * math.sin(rot) + v * math.cos(rot)])


def _max_dev(geoms, xy):
    L = geoms[-1].s + geoms[-1].length
    x, y, _ = eval_plan_view(geoms, np.linspace(0, L, int(L * 20) + 2))
    curve = shapely.LineString(np.column_stack([x, y]))
    fwd = float(shapely.distance(curve, shapely.points(xy)).max())
    back = float(shapely.distance(shapely.LineString(xy), shapely.points(np.column_stack([x, y]))).max())
    return max(fwd, back)


def test_spiral_evaluation_matches_fresnel():
    g = Geometry("spiral", 0.0, 3.0, -2.0, 0.7, 60.0, {"curvStart": 0.004, "curvEnd": 0.04})
    x, y, _ = eval_geometry(g, np.linspace(0, 60, 61))
    ref = _clothoid(60.0, 0.004, 0.04, 61, 3.0, -2.0, 0.7)
    assert np.abs(np.column_stack([x, y]) - ref).max() < 1e-9


@pytest.mark.parametrize("kind", ["line", "arc", "spiral"])
def test_fit_recovers_primitive(kind):
    if kind == "line":
        xy = np.column_stack([np.linspace(0, 80, 81), np.linspace(0, 20, 81)])
    elif kind == "arc":
        t = np.linspace(0, 60 / 120, 121)
        xy = np.column_stack([120 * np.sin(t), 120 * (1 - np.cos(t))])
    else:
        xy = _clothoid(70.0, 0.001, 0.03, 141)
    geoms = fit_plan_view(xy, 0.01)
    assert [g.kind for g in geoms] == [kind]
    assert _max_dev(geoms, xy) <= 0.01
    if kind == "arc":
        assert geoms[0].params["curvature"] == pytest.approx(1 / 120, rel=1e-3)
    if kind == "spiral":
        assert geoms[0].params["curvStart"] == pytest.approx(0.001, abs=2e-4)
        assert geoms[0].params["curvEnd"] == pytest.approx(0.03, abs=2e-4)


@pytest.mark.parametrize("kind, p", [("arc", [0.1, -0.02]), ("spiral", [-0.2, 0.01, 0.0007])])
def test_fit_jacobian_matches_differences(kind, p):
    from hdmap.export._odr_geometry import _primitive, _primitive_jacobian, _rot

    ds = np.linspace(0.0, 37.3, 80)
    p = np.array(p)

    def residual(q):
        mu, mv, _ = _rot(_primitive(kind, ds, q[1:]), q[0])
        return np.concatenate([mu, mv])

    steps = np.eye(len(p)) * 1e-6
    numeric = np.column_stack([(residual(p + e) - residual(p - e)) / 2e-6 for e in steps])
    jac = _primitive_jacobian(kind, ds, p)
    assert jac.shape == (2 * len(ds), len(p))
    assert np.abs(jac - numeric).max() <= 1e-6 * np.abs(numeric).max()


def test_fit_line_arc_spiral_chain():
    line = np.column_stack([np.linspace(0, 40, 81), np.zeros(81)])
    cl = _clothoid(40.0, 1e-9, 1 / 60, 81, 40.0, 0.0, 0.0)
    h = (1 / 60) * 40 / 2
    t = np.linspace(0, 40 / 60, 81)
    arc = np.column_stack([cl[-1, 0] + 60 * (np.sin(h + t) - np.sin(h)), cl[-1, 1] - 60 * (np.cos(h + t) - np.cos(h))])
    xy = np.vstack([line, cl[1:], arc[1:]])
    geoms = fit_plan_view(xy, 0.01)
    assert len(geoms) <= 4 and "paramPoly3" not in {g.kind for g in geoms}
    assert geoms[-1].kind == "arc"
    assert _max_dev(geoms, xy) <= 0.01
    # G1: every geometry starts where and in the direction the previous one ends
    for a, b in zip(geoms[:-1], geoms[1:]):
        x, y, hh = eval_geometry(a, np.array([a.length]))
        assert math.hypot(x[0] - b.x, y[0] - b.y) < 1e-9 and abs(b.s - a.s - a.length) < 1e-9
        assert abs(hh[0] - b.hdg) < 0.01


def test_fit_parampoly3_fallback():
    # a curve fitted with paramPoly3 only (the fallback where no line/arc/spiral reaches far)
    s = np.linspace(0, 60, 241)
    xy = np.column_stack([s, 1.5 * np.sin(s / 6)])
    geoms = fit_plan_view(xy, 0.01, primitives=())
    assert {g.kind for g in geoms} == {"paramPoly3"}
    assert _max_dev(geoms, xy) <= 0.01
    for g in geoms:
        if g.kind == "paramPoly3":  # p runs over [0, length] and length is the arc length (ASAM checker rule)
            p = g.params
            du = np.polynomial.Polynomial([p["bU"], 2 * p["cU"], 3 * p["dU"]])
            dv = np.polynomial.Polynomial([p["bV"], 2 * p["cV"], 3 * p["dV"]])
            q = np.linspace(0, g.length, 2001)
            arc = np.trapezoid(np.hypot(du(q), dv(q)), q)
            assert abs(arc - g.length) < 1e-3


def test_fit_cubics_continuous_within_tolerance():
    s = np.linspace(0, 100, 201)
    w = 3.25 + 0.5 * np.tanh((s - 50) / 5)
    pieces = fit_cubics(s, w, 0.01)
    assert len(pieces) > 1
    assert np.abs(eval_cubics(pieces, s) - w).max() <= 0.01
    for (s0, c0), (s1, _) in zip(pieces[:-1], pieces[1:]):
        end = np.polynomial.polynomial.polyval(s1 - s0, c0)
        assert end == pytest.approx(eval_cubics(pieces, np.array([s1]))[0], abs=1e-9)


# --------------------------------------------------------------------------
# reader: third-party files, round trip
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", THIRD_PARTY)
def test_read_third_party(name, tmp_path):
    m = read_opendrive(DATA / name)
    assert m.lanes and m.boundaries
    m.to_gpkg(tmp_path / "m.gpkg")
    m.to_geojson(tmp_path / "gj")
    assert LaneMap.from_geojson(tmp_path / "gj") == m
    if name == "CARLA_Town01.xodr":
        assert sum(bool(ln.successors) for ln in m.lanes) > len(m.lanes) // 2  # links through junctions
    if name == "unittest_roadmarks.xodr":
        assert {"dashed", "solid"} <= {b.pattern for b in m.boundaries}
    if name == "asam_Ex_Line-Spiral-Arc.xodr":
        # line + spiral + arc: the sampled reference border is continuous
        c = [b for b in m.boundaries if b.id.endswith("_c")]
        assert all(np.hypot(*np.diff(b.xyz[:, :2], axis=0).T).max() < 0.6 for b in c)


def test_read_round_trip_own_file(tmp_path):
    m = truth_map("junction")
    out = write_opendrive(m, tmp_path / "j.xodr", version="1.6")
    back = read_opendrive(out)
    assert back.metadata["georeferenced"] and back.metadata["opendrive_version"] == "1.6"
    assert {ln.direction for ln in back.lanes} == {"forward", "backward"}
    # writing the map read back again works and keeps the borders
    out2 = write_opendrive(back, tmp_path / "j2.xodr")
    back2 = read_opendrive(out2)
    a = shapely.MultiLineString([b.xyz[:, :2] for b in back.boundaries if b.kind != "virtual"])
    for b in back2.boundaries:
        if b.kind in ("line_thin", "line_thick"):
            assert float(shapely.distance(a, shapely.points(b.xyz[:, :2])).max()) < 0.05


def test_read_errors(tmp_path):
    from hdmap.errors import FileFormatError, InputFileNotFoundError

    with pytest.raises(InputFileNotFoundError):
        read_opendrive(tmp_path / "none.xodr")
    (tmp_path / "x.xodr").write_text("<notodr/>")
    with pytest.raises(FileFormatError, match="OpenDRIVE"):
        read_opendrive(tmp_path / "x.xodr")
    (tmp_path / "y.xodr").write_text("<OpenDRIVE><header")
    with pytest.raises(FileFormatError, match="XML"):
        read_opendrive(tmp_path / "y.xodr")
