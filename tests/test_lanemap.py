"""LaneMap: the model's rules and lossless GeoJSON / GeoPackage round trips."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hdmap import errors
from hdmap._geojson import line_geometry, write_features
from hdmap.lanemap import (
    BOUNDARY_KINDS, DIRECTIONS, LAYERS, MARKING_TYPES, PATTERNS, Boundary, InvalidMapError, Lane, LaneMap, Marking,
)

E, N, H = 692000.123456789, 5343800.987654321, 480.25


def sample_map() -> LaneMap:
    """Two lanes between a curb, a dashed line and a virtual line; a stroke and a stop line."""
    def line(dy, n=3):
        return np.column_stack([E + np.linspace(0, 20, n), np.full(n, N + dy), np.full(n, H)])

    bounds = [
        Boundary("b2", line(0.0), "line_thin", pattern="dashed", stroke_m=3.0, gap_m=6.0, width_m=0.12,
                 color="white", road="r1", provenance={"tiles": ["t_1"], "drives": ["drive_0"]}),
        Boundary("b10", line(3.5), "curbstone", height_m=0.12, road="r1"),
        Boundary("vü", line(-3.5, 2), "virtual", road="r1"),
    ]
    lanes = [
        Lane("l1", left="b10", right="b2", centerline=line(1.75), direction="forward", width=[3.5, 3.4, 3.5],
             road="r1", section="s1", index=1, successors=["l2"]),
        Lane("l2", left="b2", right="vü", centerline=line(-1.75, 2), direction="backward", width=[3.5, 3.5],
             road="r1", index=None, predecessors=["l1"]),
    ]
    marks = [
        Marking("m1", [[E, N, H], [E + 3, N, H], [E + 3, N + 0.12, H], [E, N + 0.12, H]], "lane_line", boundary="b2"),
        Marking("m2", [[E + 19, N, H], [E + 19.5, N, H], [E + 19.5, N + 3.5, H]], "stop_line", group="g1"),
    ]
    return LaneMap(bounds, lanes, marks, metadata={"software": "hdmap 0.1", "run": {"seed": 0, "tiles": 4}})


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------
def test_accessors():
    m = sample_map().validate()
    assert [b.id for b in m.lines] == ["b2", "vü"] and [b.id for b in m.curbs] == ["b10"]
    assert m.boundary("b10").kind == "curbstone" and m.boundary("b2").length == pytest.approx(20.0)
    assert m.lanes[0].width_m == 3.5 and isinstance(m.lanes[0].width_m, float)
    with pytest.raises(KeyError, match="nope"):
        m.boundary("nope")
    assert m.boundaries[0].xyz.dtype == np.float64 and repr(m).startswith("LaneMap(3 boundaries, 2 lanes")


def test_equality_is_exact_and_order_insensitive():
    a, b = sample_map(), sample_map()
    b.boundaries.reverse(), b.lanes.reverse(), b.markings.reverse()
    assert a == b
    b.boundaries[0].xyz[0, 0] = np.nextafter(b.boundaries[0].xyz[0, 0], np.inf)
    assert a != b
    b = sample_map()
    b.lanes[1].index = 2
    assert a != b
    b = sample_map()
    b.metadata["run"]["seed"] = 1
    assert a != b


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(m.lanes[0], "left", "nope"), r"lane 'l1': left boundary 'nope' does not exist"),
    (lambda m: setattr(m.lanes[0], "right", "l2"), r"lane 'l1': right boundary 'l2' is a lane"),
    (lambda m: m.lanes[0].successors.append("zz"), r"lane 'l1': successor lane 'zz' does not exist"),
    (lambda m: setattr(m.markings[0], "id", "b10"), r"duplicate id 'b10': used by a boundary and a marking"),
    (lambda m: setattr(m.boundaries[0], "pattern", "zigzag"), r"boundary 'b2': pattern 'zigzag' is not one of"),
    (lambda m: setattr(m.boundaries[1], "kind", "wall"), r"boundary 'b10': kind 'wall' is not one of"),
    (lambda m: setattr(m.lanes[1], "direction", "up"), r"lane 'l2': direction 'up' is not one of"),
    (lambda m: setattr(m.lanes[0], "width", np.ones(2)), r"lane 'l1': width profile has shape \(2,\)"),
    (lambda m: m.lanes[1].width.__setitem__(0, -1.0), r"lane 'l2': width profile has negative"),
    (lambda m: m.boundaries[0].xyz.__setitem__((1, 2), np.nan), r"boundary 'b2': xyz has NaN"),
    (lambda m: setattr(m.boundaries[2], "xyz", np.zeros((2, 2))), r"boundary 'vü': xyz must have shape \(n, 3\)"),
    (lambda m: setattr(m.markings[1], "polygon", np.zeros((2, 3))), r"marking 'm2': polygon must have .* n >= 3"),
    (lambda m: setattr(m.markings[0], "polygon", np.vstack([m.markings[0].polygon, m.markings[0].polygon[:1]])),
     r"marking 'm1': polygon repeats its first vertex"),
    (lambda m: setattr(m.markings[0], "type", "graffiti"), r"marking 'm1': type 'graffiti'"),
    (lambda m: setattr(m.boundaries[0], "provenance", {"drives": ("d0",)}), r"boundary 'b2': provenance must be"),
])
def test_validate_names_the_offender(change, message):
    m = sample_map()
    change(m)
    with pytest.raises(ValueError, match=message) as info:
        m.validate()
    assert isinstance(info.value, InvalidMapError) and isinstance(info.value, errors.HdmapError)


# ----------------------------------------------------------------------------
# random maps round-trip exactly
# ----------------------------------------------------------------------------
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)
COORD = st.one_of(FLOAT, st.floats(-1e7, 1e7), st.sampled_from([E, N, H, 0.0, -0.0]))
OPT_FLOAT = st.none() | FLOAT
OPT_TEXT = st.none() | TEXT
JSON = st.recursive(st.none() | st.booleans() | st.integers() | FLOAT | TEXT,
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6)
JSON_DICT = st.dictionaries(TEXT, JSON, max_size=3)


def xyz(min_n: int):
    return hnp.arrays(np.float64, st.tuples(st.integers(min_n, min_n + 3), st.just(3)), elements=COORD)


@st.composite
def lanemaps(draw) -> LaneMap:
    nb, nl, nm = draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    nl = nl if nb else 0
    ids = draw(st.lists(TEXT.filter(bool), min_size=nb + nl + nm, max_size=nb + nl + nm, unique=True))
    bids, lids, mids = ids[:nb], ids[nb:nb + nl], ids[nb + nl:]
    boundaries = [
        Boundary(i, draw(xyz(2)), draw(st.sampled_from(BOUNDARY_KINDS)), pattern=draw(st.none() | st.sampled_from(PATTERNS)),
                 stroke_m=draw(OPT_FLOAT), gap_m=draw(OPT_FLOAT), width_m=draw(OPT_FLOAT), color=draw(OPT_TEXT),
                 height_m=draw(OPT_FLOAT), road=draw(OPT_TEXT), provenance=draw(JSON_DICT))
        for i in bids]
    lanes = []
    for i in lids:
        center = draw(xyz(2))
        lanes.append(Lane(
            i, left=draw(st.sampled_from(bids)), right=draw(st.sampled_from(bids)), centerline=center,
            direction=draw(st.sampled_from(DIRECTIONS)), width=draw(hnp.arrays(np.float64, len(center), elements=st.floats(0, allow_infinity=False))),
            kind=draw(st.just("lane") | TEXT), road=draw(OPT_TEXT), section=draw(OPT_TEXT),
            index=draw(st.none() | st.integers(-(2**53), 2**53)),
            predecessors=draw(st.lists(st.sampled_from(lids), max_size=2)),
            successors=draw(st.lists(st.sampled_from(lids), max_size=2))))
    markings = []
    for i in mids:
        ring = draw(xyz(3))
        assume(not np.array_equal(ring[0], ring[-1]))
        markings.append(Marking(
            i, ring, draw(st.sampled_from(MARKING_TYPES) | TEXT.map(lambda s: "arrow_" + s)), group=draw(OPT_TEXT),
            boundary=draw(st.none() | st.sampled_from(bids)) if bids else None, road=draw(OPT_TEXT)))
    return LaneMap(boundaries, lanes, markings, epsg=draw(st.sampled_from([25832, 31468, 4326, 3857])),
                   metadata=draw(JSON_DICT))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanemaps())
@example(LaneMap())
@example(sample_map())
def test_round_trip_is_lossless(m):
    m.validate()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        m.to_geojson(tmp / "gj")
        assert LaneMap.from_geojson(tmp / "gj") == m
        m.to_gpkg(tmp / "map.gpkg")
        assert LaneMap.from_gpkg(tmp / "map.gpkg") == m
        assert sorted(os.listdir(tmp)) == ["gj", "map.gpkg"]  # no temporary or sidecar files left
        assert sorted(os.listdir(tmp / "gj")) == sorted(f"{layer}.geojson" for layer in LAYERS)


# ----------------------------------------------------------------------------
# GeoJSON files
# ----------------------------------------------------------------------------
def _bytes(m: LaneMap, d: Path) -> dict[str, bytes]:
    return {layer: p.read_bytes() for layer, p in m.to_geojson(d).items()}


def test_geojson_bytes_are_deterministic(tmp_path):
    first = _bytes(sample_map(), tmp_path / "a")
    assert _bytes(sample_map(), tmp_path / "b") == first
    m = sample_map()
    for objs in (m.boundaries, m.lanes, m.markings):
        random.Random(1).shuffle(objs)
    m.metadata = dict(reversed(list(m.metadata.items())))
    m.boundaries[0].provenance = dict(reversed(list(m.boundaries[0].provenance.items())))
    assert _bytes(m, tmp_path / "c") == first
    ids = [f["properties"]["id"] for f in json.loads(first["boundaries"])["features"]]
    assert ids == ["b2", "vü"]  # natural order; b10 is a curb
    lanes = json.loads(first["lanes"])
    assert lanes["metadata"] == sample_map().metadata and lanes["name"] == "lanes"
    assert lanes["features"][0]["geometry"]["coordinates"][0] == [E, N + 1.75, H]  # full precision
    assert list(lanes["features"][0]["properties"]) == ["id", "road", "section", "index", "kind", "left", "right",
                                                        "direction", "width_m", "width_profile", "predecessors",
                                                        "successors"]


def test_geojson_is_read_by_gdal(tmp_path):
    m = sample_map()
    m.to_geojson(tmp_path)
    for layer, gtype, n in (("boundaries", "LineString Z", 2), ("curbs", "LineString Z", 1),
                            ("markings", "Polygon Z", 2), ("lanes", "LineString Z", 2)):
        info = pyogrio.read_info(tmp_path / f"{layer}.geojson")
        assert (info["crs"], info["geometry_type"], info["features"]) == ("EPSG:25832", gtype, n)
        assert "id" in list(info["fields"])
    _, _, wkb, fields = pyogrio.raw.read(tmp_path / "lanes.geojson")
    geoms = shapely.from_wkb(wkb)
    assert shapely.has_z(geoms).all()
    by_id = dict(zip(fields[0], geoms))
    np.testing.assert_array_equal(shapely.get_coordinates(by_id["l1"], include_z=True), m.lanes[0].centerline)


def test_malformed_geojson_names_the_file(tmp_path):
    sample_map().to_geojson(tmp_path)
    bad = tmp_path / "lanes.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(errors.FileFormatError, match=str(bad)):
        LaneMap.from_geojson(tmp_path)
    bad.write_text("[]")
    with pytest.raises(errors.FileFormatError, match=f"{bad}: not a GeoJSON FeatureCollection"):
        LaneMap.from_geojson(tmp_path)
    bad = tmp_path / "markings.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "m9"}, "geometry": {"type": "Point", "coordinates": [0, 0, 0]}}]}))
    (tmp_path / "lanes.geojson").unlink()
    with pytest.raises(errors.FileFormatError, match=rf"{bad}: feature 0 \(id 'm9'\): geometry is a Point"):
        LaneMap.from_geojson(tmp_path)


def test_missing_files(tmp_path):
    m = sample_map()
    m.lanes = []
    m.to_geojson(tmp_path)
    (tmp_path / "lanes.geojson").unlink()
    assert LaneMap.from_geojson(tmp_path) == m  # a missing file is an empty layer
    with pytest.raises(errors.InputFileNotFoundError):
        LaneMap.from_geojson(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.InputFileNotFoundError, match="none of boundaries"):
        LaneMap.from_geojson(tmp_path / "empty")
    with pytest.raises(errors.FileFormatError, match="not a GeoPackage"):
        LaneMap.from_gpkg(tmp_path / "curbs.geojson")


def test_reads_simulator_truth_style_files(tmp_path):
    """Truth files name one predecessor/successor and have no width profile or provenance."""
    line = np.array([[E, N, H], [E + 10, N, H]])
    write_features(tmp_path / "boundaries.geojson", [(line_geometry(line), {
        "id": "b1", "kind": "line_thin", "pattern": "solid", "stroke_m": None, "gap_m": None, "width_m": 0.12,
        "color": "white", "road": "r1"})], name="boundaries")
    write_features(tmp_path / "curbs.geojson", [(line_geometry(line + [0, 3, 0]), {
        "id": "curb1", "kind": "curbstone", "height_m": 0.12, "road": "r1"})], name="curbs")
    write_features(tmp_path / "lanes.geojson", [(line_geometry(line + [0, 1.5, 0]), {
        "id": "lane1", "road": "r1", "left": "curb1", "right": "b1", "direction": "forward", "width_m": 3.0,
        "kind": "driving", "index": 1, "predecessor": None, "successor": None})], name="lanes")
    m = LaneMap.from_geojson(tmp_path)
    (lane,) = m.lanes
    assert lane.predecessors == [] and lane.width.tolist() == [3.0, 3.0] and m.boundary("curb1").provenance == {}


# ----------------------------------------------------------------------------
# GeoPackage
# ----------------------------------------------------------------------------
def test_gpkg_layers_crs_and_fields(tmp_path):
    m = sample_map()
    path = m.to_gpkg(tmp_path / "map.gpkg")
    assert [tuple(row) for row in pyogrio.list_layers(path)] == [
        ("boundaries", "LineString Z"), ("curbs", "LineString Z"), ("markings", "Polygon Z"), ("lanes", "LineString Z")]
    info = pyogrio.read_info(path, layer="lanes")
    assert info["crs"] == "EPSG:25832"
    assert json.loads(info["layer_metadata"]["hdmap_metadata"]) == m.metadata
    meta, _, _, cols = pyogrio.raw.read(path, layer="lanes", columns=["id", "predecessors", "width_profile"])
    cols = dict(zip(meta["fields"], cols))  # in the file's field order, not the order asked for
    assert list(cols["id"]) == ["l1", "l2"] and json.loads(cols["predecessors"][1]) == ["l1"]
    assert json.loads(cols["width_profile"][0]) == [3.5, 3.4, 3.5]
    m.lanes[0].width[1] = 3.3  # rewriting replaces the file
    assert LaneMap.from_gpkg(m.to_gpkg(path)) == m
    assert os.listdir(tmp_path) == ["map.gpkg"]
