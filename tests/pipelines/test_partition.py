"""Partitioning a LaneMap by municipality: cuts, ids, links, markings, and both halves in the real consumers."""

from __future__ import annotations

import logging

import numpy as np
import pyproj
import pytest
import shapely

from hdmap import LaneMap
from hdmap.errors import ParameterError
from hdmap.export.lanelet2 import write_lanelet2
from hdmap.lanemap import Boundary, InvalidMapError, Lane, Marking
from hdmap.municipalities import load_municipalities
from hdmap.pipelines.partition import partition
from tests.conftest import truth_map
from tests.test_export_lanelet2 import check_consumer, load, osm_tags
from tests.test_export_opendrive import check_export

LENGTH = 600  # m of the B13 from N 5,343,500: crosses the Munich / Oberschleissheim border
MUC, OSH = "09162000_Muenchen", "09184135_Oberschleissheim"
ORIGIN = (48.25, 11.6)  # one Lanelet2 origin for both halves


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def coords(o) -> np.ndarray:
    return o.centerline if isinstance(o, Lane) else o.xyz


def length(xyz) -> float:
    return float(np.hypot(*np.diff(xyz[:, :2], axis=0).T).sum())


def pieces_by_original(m: LaneMap, parts: dict) -> dict:
    """{original id: [(piece number, region, object), ...] along the polyline}; number 0 for uncut objects."""
    orig = {o.id for o in m.boundaries + m.lanes}
    out: dict = {}
    for key, part in parts.items():
        for o in part.boundaries + part.lanes:
            if o.id in orig:
                out.setdefault(o.id, []).append((0, key, o))
            else:
                base, k = o.id.rsplit(".", 1)
                assert base in orig, o.id
                out.setdefault(base, []).append((int(k), key, o))
    for lst in out.values():
        lst.sort(key=lambda x: x[0])
    return out


def cross_sections(m: LaneMap, border) -> list[tuple[np.ndarray, np.ndarray]]:
    """(point, unit direction of the centerline there) where each lane's centerline meets the border."""
    out = []
    for ln in m.lanes:
        xy = ln.centerline[:, :2]
        hit = shapely.intersection(shapely.LineString(xy), border)
        for p in shapely.get_coordinates(hit):
            segs = [shapely.LineString(xy[j:j + 2]).distance(shapely.Point(p)) for j in range(len(xy) - 1)]
            j = int(np.argmin(segs))
            d = xy[j + 1] - xy[j]
            out.append((p, d / np.hypot(*d)))
    return out


def check_cuts(m: LaneMap, parts: dict, border, *, sections=True) -> dict:
    """Pieces join bit-identically on the border or on a lane's cross-section there; lengths add up."""
    secs = cross_sections(m, border) if sections else []
    orig = {o.id: o for o in m.boundaries + m.lanes}
    got = pieces_by_original(m, parts)
    for oid, lst in got.items():
        o = orig[oid]
        if len(lst) == 1 and lst[0][0] == 0:
            assert lst[0][2] == o or isinstance(o, Lane)  # uncut boundaries are unchanged (lanes: links may drop)
            assert np.array_equal(coords(lst[0][2]), coords(o))
            continue
        assert [k for k, _, _ in lst] == list(range(1, len(lst) + 1)), oid  # everything lies in some region here
        for (_, ra, a), (_, rb, b) in zip(lst, lst[1:]):
            assert ra != rb, (oid, "consecutive pieces in one region should have been one piece")
            q = coords(a)[-1]
            assert np.array_equal(q, coords(b)[0]), oid  # the shared vertex, bit-identical
            if isinstance(o, Lane):
                assert a.width[-1] == b.width[0]
            on_border = border.distance(shapely.Point(q[:2])) < 1e-6
            on_section = any(abs((q[:2] - p) @ u) < 1e-6 and np.hypot(*(q[:2] - p)) < 30 for p, u in secs)
            assert on_border or on_section, (oid, q)
        total = sum(length(coords(x)) for _, _, x in lst)
        assert total == pytest.approx(length(coords(o)), rel=1e-6), oid
        # the pieces are the original vertices plus the cut points, which lie on the original polyline
        joined = np.vstack([coords(lst[0][2])] + [coords(x)[1:] for _, _, x in lst[1:]])
        line = shapely.LineString(coords(o)[:, :2])
        extra = [not any(np.array_equal(p, v) for v in coords(o)) for p in joined]
        assert np.array_equal(joined[~np.array(extra)], coords(o)), oid
        assert all(line.distance(shapely.Point(p[:2])) < 1e-6 for p in joined[np.array(extra)])
        if isinstance(o, Lane):
            assert sum(len(x.width) for _, _, x in lst) == len(joined) + len(lst) - 1
    return got


def check_parts(m: LaneMap, parts: dict):
    """Every part valid, ids unique across parts, links inside the part, markings delivered once."""
    ids = [o.id for p in parts.values() for o in p.boundaries + p.lanes + p.markings]
    assert len(ids) == len(set(ids))
    for key, p in parts.items():
        p.validate()
        assert p.epsg == m.epsg and p.metadata == {**m.metadata, "region": key}
        lanes = {ln.id for ln in p.lanes}
        bounds = {b.id for b in p.boundaries}
        for ln in p.lanes:
            assert set(ln.predecessors) | set(ln.successors) <= lanes
            assert {ln.left, ln.right} <= bounds
        marks = {mk.id for mk in p.markings}
        for mk in p.markings:
            assert mk.group is None or mk.group in marks or mk.group not in {x.id for x in m.markings}
            assert mk.boundary is None or mk.boundary in bounds
    delivered = [mk.id for p in parts.values() for mk in p.markings]
    assert len(delivered) == len(set(delivered))


# --------------------------------------------------------------------------
# the B13 across the Munich / Oberschleissheim border
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def b13():
    m = truth_map("tempus-b13", length=LENGTH)
    regions = [(mun.slug, mun.geometry) for mun in load_municipalities()]
    border = shapely.union_all([shapely.boundary(g) for _, g in regions])
    return m, regions, border, partition(m, regions)


def test_b13_two_deliveries(b13):
    m, regions, border, parts = b13
    assert list(parts) == [MUC, OSH]  # input order, only regions that receive something
    check_parts(m, parts)
    # every marking is delivered exactly once (the whole road lies in the two municipalities)
    assert sorted(mk.id for p in parts.values() for mk in p.markings) == sorted(mk.id for mk in m.markings)
    # the same input gives the same output, and so does the same map listed in another order
    assert partition(m, regions) == parts
    shuffled = LaneMap(m.boundaries[::-1], m.lanes[::-1], m.markings[::-1], epsg=m.epsg, metadata=m.metadata)
    again = partition(shuffled, regions)
    assert list(again) == list(parts) and all(again[k] == parts[k] for k in parts)


def test_b13_cut_at_border_and_cross_sections(b13):
    m, regions, border, parts = b13
    got = check_cuts(m, parts, border)
    cut = {oid: lst for oid, lst in got.items() if lst[0][0] != 0}
    lanes_cut = [oid for oid in cut if isinstance(cut[oid][0][2], Lane)]
    # both carriageways (2 lanes each) and the side road (2 lanes) cross; their boundaries are cut with them
    assert len(lanes_cut) == 6 and len(cut) == 15
    # lanes are cut at their own border crossing or on the cross-section through a neighbour's
    on_border = [oid for oid in lanes_cut if border.distance(shapely.Point(coords(cut[oid][0][2])[-1, :2])) < 1e-6]
    assert len(on_border) >= 3
    # a cut lane piece ends where its boundary pieces end (one cross-section), in its own part
    for key, p in parts.items():
        bounds = {b.id: b for b in p.boundaries}
        for ln in p.lanes:
            if "." in ln.id:
                base = ln.id.rsplit(".", 1)[0]
                orig = next(x for x in m.lanes if x.id == base)
                for end in (0, -1):
                    if np.array_equal(ln.centerline[end], orig.centerline[end]):
                        continue
                    q = ln.centerline[end, :2]
                    for bid in (ln.left, ln.right):
                        b = bounds[bid]
                        d = min(np.hypot(*(b.xyz[0, :2] - q)), np.hypot(*(b.xyz[-1, :2] - q)))
                        assert d < 0.6 * ln.width.max() + 0.01, (ln.id, bid, d)
    # uncut objects keep their id and geometry
    assert any(oid in {b.id for b in parts[MUC].boundaries} for oid in got if got[oid][0][0] == 0)


def test_b13_halves_export(b13, tmp_path, caplog):
    m, regions, border, parts = b13
    files = {}
    for key, p in parts.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hdmap.export.lanelet2"):
            path = write_lanelet2(p, tmp_path / f"{key}.osm", origin=ORIGIN)
        lmap, errors, info = load(path)
        check_consumer(p, path, lmap, errors, info, caplog.records)  # loads without errors, valid routing graph
        files[key] = path
        check_export(p, key, tmp_path)  # OpenDRIVE: XSD, qc_opendrive without issues, accuracy, georeference
    # the node at each cut has the same lat/lon in both files
    to_ll = pyproj.Transformer.from_crs(m.epsg, 4326, always_xy=True)
    nodes = {}
    for key, path in files.items():
        _, enz, root = osm_tags(path)
        text = {int(n.get("id")): (n.get("lat"), n.get("lon")) for n in root.iter("node")}
        ids = np.array(list(enz))
        nodes[key] = (ids, np.array([enz[i][:2] for i in ids]), text)
    shared = 0
    for oid, lst in pieces_by_original(m, parts).items():
        if not isinstance(lst[0][2], Boundary):
            continue
        for (_, ra, a), (_, rb, b) in zip(lst, lst[1:]):
            q = a.xyz[-1, :2]
            found = []
            for key in (ra, rb):
                ids, en, text = nodes[key]
                d = np.hypot(*(en - q).T)
                j = int(np.argmin(d))
                assert d[j] < 1e-3, (oid, key, d[j])
                found.append(text[int(ids[j])])
            assert found[0] == found[1], (oid, found)
            lon, lat = to_ll.transform(*q)
            assert abs(float(found[0][0]) - lat) < 1e-9 and abs(float(found[0][1]) - lon) < 1e-9
            shared += 1
    assert shared == 9


# --------------------------------------------------------------------------
# synthetic maps and square regions
# --------------------------------------------------------------------------
A, B = shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)
AB = [("A", A), ("B", B)]
BORDER = shapely.union_all([A.boundary, B.boundary])


def line(bid, pts, **kw):
    pts = np.asarray(pts, dtype=float)
    if pts.shape[1] == 2:
        pts = np.column_stack([pts, np.zeros(len(pts))])
    return Boundary(bid, pts, kw.pop("kind", "line_thin"), pattern=kw.pop("pattern", "solid"), **kw)


def u_road() -> LaneMap:
    """One lane of width 2 driving a U from x=4: east along y=2 into B, north, back west along y=8 into A."""
    def u(off):  # offset > 0: inside of the U (left of the driving direction)
        return [[4, 2 + off, 0.0], [14 - off, 2 + off, 1.0], [14 - off, 8 - off, 2.0], [4, 8 - off, 3.0]]
    left, right = line("bl", u(1.0), pattern="dashed"), line("br", u(-1.0), kind="curbstone", pattern=None)
    ln = Lane("l", left="bl", right="br", centerline=u(0.0), direction="forward", width=[2.0, 2.5, 2.5, 2.0],
              road="r", predecessors=["l0"], successors=["l9"])
    before = Lane("l0", left="bl0", right="br0", centerline=[[1, 2, 0], [4, 2, 0]], direction="forward",
                  width=[2, 2], road="r", successors=["l"])
    after = Lane("l9", left="bl9", right="br9", centerline=[[4, 8, 3], [1, 8, 3]], direction="forward",
                 width=[2, 2], road="r", predecessors=["l"])
    extra = [line("bl0", [[1, 3], [4, 3]]), line("br0", [[1, 1], [4, 1]]),
             line("bl9", [[4, 7], [1, 7]]), line("br9", [[4, 9], [1, 9]])]
    return LaneMap([left, right] + extra, [before, ln, after], epsg=25832, metadata={"run": 1})


def test_line_crossing_twice():
    m = LaneMap([line("b", [[2, 2, 0], [15, 5, 13], [2, 8, 26]])])
    parts = partition(m, AB)
    assert [b.id for b in parts["A"].boundaries] == ["b.1", "b.3"] and [b.id for b in parts["B"].boundaries] == ["b.2"]
    b1, b3 = parts["A"].boundaries
    b2 = parts["B"].boundaries[0]
    assert np.array_equal(b1.xyz[-1], b2.xyz[0]) and np.array_equal(b2.xyz[-1], b3.xyz[0])
    assert b1.xyz[-1] == pytest.approx([10, 2 + 3 * 8 / 13, 8]) and b3.xyz[0] == pytest.approx([10, 8 - 3 * 8 / 13, 18])
    check_cuts(m, parts, BORDER, sections=False)
    check_parts(m, parts)


def test_lane_crossing_twice_cut_with_its_boundaries():
    m = u_road()
    parts = partition(m, AB)
    check_cuts(m, parts, BORDER)
    check_parts(m, parts)
    a, b = parts["A"], parts["B"]
    lanes_a = {ln.id: ln for ln in a.lanes}
    assert sorted(lanes_a) == ["l.1", "l.3", "l0", "l9"] and [ln.id for ln in b.lanes] == ["l.2"]
    # the lane and its boundaries are cut on one cross-section, the vertical x = 10
    assert (lanes_a["l.1"].left, lanes_a["l.1"].right, lanes_a["l.3"].left, lanes_a["l.3"].right) == \
        ("bl.1", "br.1", "bl.3", "br.3")
    assert (b.lanes[0].left, b.lanes[0].right) == ("bl.2", "br.2")
    bl = {x.id: x for x in a.boundaries + b.boundaries}
    assert bl["bl.1"].xyz[-1] == pytest.approx([10, 3, 6 / 9]) and bl["br.1"].xyz[-1] == pytest.approx([10, 1, 6 / 11])
    assert bl["bl.3"].xyz[0] == pytest.approx([10, 7, 2 + 3 / 9])
    assert bl["br.3"].xyz[0] == pytest.approx([10, 9, 2 + 5 / 11])
    # z and the width profile are interpolated along the segment at the cut
    assert lanes_a["l.1"].centerline[-1] == pytest.approx([10, 2, 0.6])
    assert lanes_a["l.1"].width[-1] == pytest.approx(2.3) and b.lanes[0].width[0] == lanes_a["l.1"].width[-1]
    # links: first piece keeps the predecessor, last the successor; links into B are dropped in A
    assert lanes_a["l.1"].predecessors == ["l0"] and lanes_a["l.1"].successors == []
    assert lanes_a["l.3"].successors == ["l9"] and lanes_a["l0"].successors == ["l.1"]
    assert lanes_a["l9"].predecessors == ["l.3"]
    assert b.lanes[0].predecessors == [] and b.lanes[0].successors == []
    assert a.metadata == {"run": 1, "region": "A"} and b.metadata == {"run": 1, "region": "B"}


def test_line_along_the_border():
    # the middle segment runs exactly on x = 10: it stays with the piece before it
    m = LaneMap([line("b", [[5, 2], [10, 2], [10, 8], [15, 8]]), line("c", [[15, 8], [10, 8], [10, 2], [5, 2]])])
    parts = partition(m, AB)
    bs = {b.id: (k, b.xyz[:, :2].tolist()) for k, p in parts.items() for b in p.boundaries}
    assert bs == {"b.1": ("A", [[5, 2], [10, 2], [10, 8]]), "b.2": ("B", [[10, 8], [15, 8]]),
                  "c.1": ("B", [[15, 8], [10, 8], [10, 2]]), "c.2": ("A", [[10, 2], [5, 2]])}
    check_cuts(m, parts, BORDER, sections=False)


def test_slivers_are_not_cut():
    # a 0.3 m overshoot and a 0.4 m dip into B stay with A (shorter than min_length)
    over = line("over", [[5, 5], [10.3, 5]])
    dip = line("dip", [[5, 4], [10.2, 5], [5, 6]])
    m = LaneMap([over, dip])
    parts = partition(m, AB)
    assert list(parts) == ["A"] and parts["A"].boundaries == [over, dip]
    parts = partition(m, AB, min_length=0.1)
    assert sorted(b.id for p in parts.values() for b in p.boundaries) == ["dip.1", "dip.2", "dip.3", "over.1",
                                                                          "over.2"]
    check_cuts(m, parts, BORDER, sections=False)


def test_lane_inside_one_region_is_untouched():
    bl, br = line("bl", [[1, 3, 0], [9, 3, 0]]), line("br", [[1, 1, 0], [9, 1, 0]], kind="road_border", pattern=None)
    ln = Lane("l", "bl", "br", [[1, 2, 0], [9, 2, 0]], "forward", [2, 2], road="r")
    other = line("x", [[12, 5], [18, 5]])
    mk = Marking("m1", [[3, 1.9, 0], [4, 1.9, 0], [4, 2.1, 0]], "stop_line")
    m = LaneMap([bl, br, other], [ln], [mk])
    parts = partition(m, AB)
    assert parts["A"] == LaneMap([bl, br], [ln], [mk], metadata={"region": "A"})
    assert parts["B"] == LaneMap([other], metadata={"region": "B"})
    # a boundary dipping into B while the centerline stays in A: the lane stays whole with its boundaries
    br2 = line("br", [[1, 1, 0], [9, 1, 0], [11, 1, 0], [11, 0.5, 0]], kind="road_border", pattern=None)
    parts = partition(LaneMap([bl, br2], [ln]), AB)
    assert list(parts) == ["A"] and parts["A"].boundaries[1] == br2 and parts["A"].lanes == [ln]


def test_map_outside_all_regions():
    m = u_road()
    far = [("far", shapely.box(1000, 1000, 2000, 2000))]
    assert partition(m, far) == {}
    assert partition(m, []) == {}
    # keys in input order, only the regions that receive something
    parts = partition(m, [("far", far[0][1]), ("B", B), ("A", A)])
    assert list(parts) == ["B", "A"]


def test_markings_whole_groups_together():
    b = line("b", [[2, 5], [18, 5]], pattern="dashed")
    dash_a = Marking("d1", [[8, 4.9, 0], [9, 4.9, 0], [9, 5.1, 0], [8, 5.1, 0]], "lane_line", boundary="b")
    dash_b = Marking("d2", [[11, 4.9, 0], [12, 4.9, 0], [12, 5.1, 0], [11, 5.1, 0]], "lane_line", boundary="b")
    straddle = Marking("s", [[9.5, 2, 0], [10.8, 2, 0], [10.8, 3, 0], [9.5, 3, 0]], "stop_line")  # centroid in B
    bars = [Marking(f"bar{i}", [[x, 6, 0], [x + 0.5, 6, 0], [x + 0.5, 9, 0], [x, 9, 0]], "crosswalk_bar", group="cw")
            for i, x in enumerate([8.0, 9.0, 10.0, 11.0, 12.0])]  # group centroid x = 10.25: in B
    cw = Marking("cw", [[7.9, 5.9, 0], [12.6, 5.9, 0], [12.6, 9.1, 0], [7.9, 9.1, 0]], "crosswalk")
    m = LaneMap([b], [], [dash_a, dash_b, straddle, cw] + bars)
    parts = partition(m, AB)
    ma = {mk.id: mk for mk in parts["A"].markings}
    mb = {mk.id: mk for mk in parts["B"].markings}
    assert sorted(ma) == ["d1"] and sorted(mb) == ["bar0", "bar1", "bar2", "bar3", "bar4", "cw", "d2", "s"]
    assert ma["d1"].boundary == "b.1" and mb["d2"].boundary == "b.2"
    assert mb["s"] == straddle and mb["bar0"] == bars[0]
    check_parts(m, parts)


def test_errors():
    m = u_road()
    with pytest.raises(ParameterError, match="'A'.*twice"):
        partition(m, [("A", A), ("A", B)])
    with pytest.raises(ParameterError, match="min_length"):
        partition(m, AB, min_length=-1)
    with pytest.raises(ParameterError, match="'line'.*without area"):
        partition(m, [("line", shapely.LineString([(0, 0), (1, 1)]))])
    clash = LaneMap([line("b", [[2, 5], [18, 5]]), line("b.1", [[2, 1], [5, 1]])])
    with pytest.raises(InvalidMapError, match="'b.1'"):
        partition(clash, AB)
