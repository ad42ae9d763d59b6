"""The lane-level vector map: boundaries, lanes and markings, with lossless file I/O.

A :class:`LaneMap` holds :class:`Boundary` polylines (painted lines, virtual
lines, curbs and road borders), :class:`Lane` objects (a centerline between a
left and a right boundary) and :class:`Marking` polygons, all as float64 numpy
arrays in the map CRS (``epsg``, e.g. ETRS89 / UTM 32N easting ~692000), plus a
JSON-able ``metadata`` dict with run information. Every exporter consumes it and
every reader returns it.

File formats
------------
Both formats round-trip a valid map exactly (``LaneMap.from_geojson(d) == m``):
coordinates and numbers are written at full float64 precision, ``None`` stays
``None``.

GeoJSON (:meth:`LaneMap.to_geojson`): a directory of four FeatureCollections,
``boundaries.geojson`` (every kind but curbs, including ``virtual``),
``curbs.geojson`` (``curbstone`` and ``road_border``), ``markings.geojson``
(Polygon Z, ring closed) and ``lanes.geojson`` (LineString Z centerlines). Each
has the members ``type``, ``name`` (layer name), ``crs`` (``urn:ogc:def:crs:EPSG::<epsg>``),
``metadata`` (the map's run metadata; a foreign member, repeated in all four so
each file describes itself) and ``features``, sorted by natural id order
(``"b2" < "b10"``), so equal maps give identical bytes. Lists and dicts
(``provenance``, ``width_profile``, ``predecessors``, ``successors``) are JSON
arrays/objects. A missing file reads as an empty layer; a file without ``crs``
is taken as EPSG:4326 (RFC 7946). For the simulator's truth files, lane
properties ``predecessor``/``successor`` (one id or null) and a lane without
``width_profile`` (its ``width_m`` is used at every vertex) are accepted.

GeoPackage (:meth:`LaneMap.to_gpkg`): the same four layers in one file, written
with pyogrio, 3D geometries, the CRS set to the map's EPSG code. ``provenance``,
``width_profile``, ``predecessors`` and ``successors`` are JSON text fields;
``metadata`` is JSON text in the metadata item ``hdmap_metadata`` of every layer (layer, not
dataset, metadata: GDAL writes a ``.aux.xml`` sidecar when it opens a GeoPackage that has
dataset metadata for reading). GDAL's per-layer ``last_change`` stamp is fixed to
:data:`GPKG_TIMESTAMP`, so the same map gives the same bytes.

Both writers replace files atomically (temporary file + rename); a GeoJSON
directory is four such replacements, one per file.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path, write_text_atomic
from ._geojson import crs_member
from .errors import CorruptFileError, CRSError, FileFormatError, HdmapError, InputFileNotFoundError

__all__ = [
    "Boundary",
    "Lane",
    "Marking",
    "LaneMap",
    "InvalidMapError",
    "BOUNDARY_KINDS",
    "CURB_KINDS",
    "PATTERNS",
    "DIRECTIONS",
    "MARKING_TYPES",
    "LAYERS",
]

#: Kinds of :class:`Boundary`; the last two are road edges (:attr:`LaneMap.curbs`).
BOUNDARY_KINDS = ("line_thin", "line_thick", "curbstone", "road_border", "virtual")
CURB_KINDS = ("curbstone", "road_border")
#: Line patterns, left to right in the direction of the boundary where doubled.
PATTERNS = ("solid", "dashed", "solid_solid", "solid_dashed", "dashed_solid")
DIRECTIONS = ("forward", "backward")
#: Marking types; any ``arrow_*`` is allowed as well.
MARKING_TYPES = ("stop_line", "crosswalk", "crosswalk_bar", "lane_line", "arrow_straight", "arrow_left",
                 "arrow_right", "arrow_straight_left", "arrow_straight_right", "other")
#: Layer (file) names, in writing order.
LAYERS = ("boundaries", "curbs", "markings", "lanes")

_INT_LIMIT = 2**53  # ints read back from a GeoPackage column with nulls pass through float64
_GPKG_METADATA_KEY = "hdmap_metadata"


GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"
"""``last_change`` of every GeoPackage layer hdmap writes (reproducible files; the time of writing is not data)."""


class InvalidMapError(HdmapError, ValueError):
    """A :class:`LaneMap` breaks a rule of the model (see :meth:`LaneMap.validate`)."""


def _opt_float(value) -> float | None:
    return None if value is None else float(value)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


class _Record:
    """Exact field-by-field equality, arrays compared with :func:`numpy.array_equal`."""

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


@dataclass(eq=False)
class Boundary(_Record):
    """A lane boundary or road edge: a 3D polyline with its line type.

    Parameters
    ----------
    id : str
        Unique id within the map.
    xyz : ndarray, shape (n, 3), n >= 2
        Vertices in the map CRS (converted to float64).
    kind : str
        One of :data:`BOUNDARY_KINDS`.
    pattern : str, optional
        One of :data:`PATTERNS` (painted lines); None for curbs and virtual lines.
    stroke_m, gap_m : float, optional
        Dash and gap length of a dashed line (m).
    width_m : float, optional
        Painted line width (m).
    color : str, optional
        Paint colour, e.g. ``"white"``.
    height_m : float, optional
        Curb height above the road (m).
    road : str, optional
        Id of the road the boundary belongs to.
    provenance : dict
        JSON-able source information, e.g. ``{"drives": ["drive_0"], "tiles": []}``.
    """

    id: str
    xyz: np.ndarray
    kind: str
    pattern: str | None = None
    stroke_m: float | None = None
    gap_m: float | None = None
    width_m: float | None = None
    color: str | None = None
    height_m: float | None = None
    road: str | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.xyz = np.asarray(self.xyz, dtype=np.float64)
        for name in ("stroke_m", "gap_m", "width_m", "height_m"):
            setattr(self, name, _opt_float(getattr(self, name)))

    @property
    def length(self) -> float:
        """Length of the polyline in the horizontal plane (m)."""
        return float(np.hypot(*np.diff(self.xyz[:, :2], axis=0).T).sum())


@dataclass(eq=False)
class Lane(_Record):
    """A lane: the area between two boundaries, driven in one direction.

    Parameters
    ----------
    id : str
        Unique id within the map.
    left, right : str
        Ids of the left and right :class:`Boundary`, seen in the driving direction.
    centerline : ndarray, shape (n, 3), n >= 2
        Centre line in the driving direction (converted to float64).
    direction : {"forward", "backward"}
        Driving direction relative to the road's reference direction.
    width : ndarray, shape (n,)
        Lane width (m, >= 0) at each centerline vertex.
    kind : str
        Lane type, ``"lane"`` by default.
    road, section : str, optional
        Ids of the road and lane section.
    index : int, optional
        Position of the lane in its section.
    predecessors, successors : list of str
        Ids of the lanes before and after this one in the driving direction.
    """

    id: str
    left: str
    right: str
    centerline: np.ndarray
    direction: str
    width: np.ndarray
    kind: str = "lane"
    road: str | None = None
    section: str | None = None
    index: int | None = None
    predecessors: list[str] = field(default_factory=list)
    successors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.centerline = np.asarray(self.centerline, dtype=np.float64)
        self.width = np.asarray(self.width, dtype=np.float64)
        if self.index is not None:
            self.index = operator.index(self.index)

    @property
    def width_m(self) -> float:
        """Median of the width profile (m)."""
        w = np.sort(self.width)
        lo, hi = w[(len(w) - 1) // 2], w[len(w) // 2]
        return float(lo + (hi - lo) / 2)  # np.median's (lo + hi) / 2 can overflow


@dataclass(eq=False)
class Marking(_Record):
    """A painted road marking as a 3D polygon.

    Parameters
    ----------
    id : str
        Unique id within the map.
    polygon : ndarray, shape (n, 3), n >= 3
        Exterior ring, without repeating the first vertex at the end.
    type : str
        One of :data:`MARKING_TYPES` or any ``"arrow_*"``.
    group : str, optional
        Id shared by the parts of one marking (e.g. the bars of a crosswalk).
    boundary : str, optional
        Id of the :class:`Boundary` a lane-line stroke belongs to.
    road : str, optional
        Id of the road.
    """

    id: str
    polygon: np.ndarray
    type: str
    group: str | None = None
    boundary: str | None = None
    road: str | None = None

    def __post_init__(self):
        self.polygon = np.asarray(self.polygon, dtype=np.float64)


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------
def _natural_key(s: str):
    parts = re.split(r"([0-9]+)", s)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), s


def _check_text(what: str, name: str, value, *, optional: bool = True):
    if value is None and optional:
        return
    if not isinstance(value, str) or (not value and name == "id"):
        raise InvalidMapError(f"{what}: {name} must be a {'non-empty ' if name == 'id' else ''}string, not {value!r}")
    if "\x00" in value:
        raise InvalidMapError(f"{what}: {name} {value!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMapError(f"{what}: {name} {value!r} cannot be encoded as UTF-8") from None


def _check_choice(what: str, name: str, value, choices, *, optional: bool = False):
    if value is None and optional:
        return
    if value not in choices:
        raise InvalidMapError(f"{what}: {name} {value!r} is not one of {', '.join(choices)}")


def _check_float(what: str, name: str, value):
    if value is not None and not (isinstance(value, float) and math.isfinite(value)):
        raise InvalidMapError(f"{what}: {name} must be a finite float or None, not {value!r}")


def _check_coords(what: str, name: str, arr, min_vertices: int):
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < min_vertices:
        shape = getattr(arr, "shape", type(arr).__name__)
        raise InvalidMapError(f"{what}: {name} must have shape (n, 3) with n >= {min_vertices}, not {shape}")
    if not np.isfinite(arr).all():
        raise InvalidMapError(f"{what}: {name} has NaN or infinite coordinates")


def _check_json(what: str, name: str, value, kind: type):
    if not isinstance(value, kind):
        raise InvalidMapError(f"{what}: {name} must be a {kind.__name__}, not {type(value).__name__}")
    try:
        ok = json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidMapError(f"{what}: {name} must be plain JSON data (str keys, lists, finite numbers): {value!r}")


def _canon(value):
    """JSON value with dict keys sorted, so equal values serialise to equal text."""
    if isinstance(value, dict):
        return {k: _canon(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


# ----------------------------------------------------------------------------
# one schema for both formats: (property name, kind); kinds str/float/int/json
# ----------------------------------------------------------------------------
_BOUNDARY_SCHEMA = (("id", "str"), ("kind", "str"), ("pattern", "str"), ("stroke_m", "float"), ("gap_m", "float"),
                    ("width_m", "float"), ("color", "str"), ("height_m", "float"), ("road", "str"),
                    ("provenance", "json"))
_MARKING_SCHEMA = (("id", "str"), ("type", "str"), ("group", "str"), ("boundary", "str"), ("road", "str"))
_LANE_SCHEMA = (("id", "str"), ("road", "str"), ("section", "str"), ("index", "int"), ("kind", "str"),
                ("left", "str"), ("right", "str"), ("direction", "str"), ("width_m", "float"),
                ("width_profile", "json"), ("predecessors", "json"), ("successors", "json"))
_SCHEMAS = {"boundaries": _BOUNDARY_SCHEMA, "curbs": _BOUNDARY_SCHEMA, "markings": _MARKING_SCHEMA,
            "lanes": _LANE_SCHEMA}


def _properties(obj) -> dict:
    if isinstance(obj, Boundary):
        props = {name: getattr(obj, name) for name, _ in _BOUNDARY_SCHEMA}
        props["provenance"] = _canon(obj.provenance)
        return props
    if isinstance(obj, Marking):
        return {name: getattr(obj, name) for name, _ in _MARKING_SCHEMA}
    return {"id": obj.id, "road": obj.road, "section": obj.section, "index": obj.index, "kind": obj.kind,
            "left": obj.left, "right": obj.right, "direction": obj.direction, "width_m": obj.width_m,
            "width_profile": obj.width.tolist(), "predecessors": list(obj.predecessors),
            "successors": list(obj.successors)}


def _coords_of(obj) -> np.ndarray:
    if isinstance(obj, Marking):
        return np.vstack([obj.polygon, obj.polygon[:1]])
    return obj.xyz if isinstance(obj, Boundary) else obj.centerline


def _links(props: dict, plural: str, singular: str) -> list:
    if plural in props:
        return props[plural]
    one = props.get(singular)  # simulator truth files: one id or null
    return [] if one is None else one if isinstance(one, list) else [one]


def _build(layer: str, props: dict, coords: np.ndarray) -> Boundary | Lane | Marking:
    """Model object of *layer* from its properties and vertices (a closed ring for markings)."""
    if layer == "markings":
        ring = coords[:-1] if len(coords) > 1 and np.array_equal(coords[0], coords[-1]) else coords
        return Marking(id=props["id"], polygon=ring, type=props["type"], group=props.get("group"),
                       boundary=props.get("boundary"), road=props.get("road"))
    if layer == "lanes":
        width = props.get("width_profile")
        if width is None:
            width = np.full(len(coords), float(props["width_m"]))
        return Lane(id=props["id"], left=props["left"], right=props["right"], centerline=coords,
                    direction=props["direction"], width=width, kind=props.get("kind", "lane"),
                    road=props.get("road"), section=props.get("section"), index=props.get("index"),
                    predecessors=_links(props, "predecessors", "predecessor"),
                    successors=_links(props, "successors", "successor"))
    prov = props.get("provenance")
    return Boundary(id=props["id"], xyz=coords, kind=props["kind"], pattern=props.get("pattern"),
                    stroke_m=props.get("stroke_m"), gap_m=props.get("gap_m"), width_m=props.get("width_m"),
                    color=props.get("color"), height_m=props.get("height_m"), road=props.get("road"),
                    provenance={} if prov is None else prov)


def _epsg_from_name(name: str) -> int | None:
    if re.fullmatch(r"(urn:ogc:def:crs:)?OGC:(1\.3:)?CRS84", name, re.I):
        return 4326
    m = re.fullmatch(r"(?:urn:ogc:def:crs:)?EPSG:(?:[0-9.]*:)?([0-9]+)", name, re.I)
    return int(m.group(1)) if m else None


def _one(values: dict, what: str, default, error: type[Exception] = FileFormatError):
    """The single value of ``{source: value}``; an error naming two sources that disagree."""
    items = list(values.items())
    for src, val in items[1:]:
        if val != items[0][1]:
            raise error(
                f"{items[0][0]} and {src} disagree about the {what} ({items[0][1]!r} vs {val!r}); "
                "they do not belong to the same map")
    return items[0][1] if items else default


@dataclass(eq=False)
class LaneMap:
    """A lane-level HD map: boundaries, lanes and markings in one projected CRS.

    Parameters
    ----------
    boundaries : list of Boundary
        Lane lines, virtual lines, curbs and road borders.
    lanes : list of Lane
    markings : list of Marking
    epsg : int
        EPSG code of the coordinates, ETRS89 / UTM 32N (25832) by default.
    metadata : dict
        JSON-able run information (software version, drives, parameters, ...).

    Notes
    -----
    Equality is exact and ignores the order of the objects in each list (they are
    matched by id); arrays are compared with :func:`numpy.array_equal`.

    Examples
    --------
    >>> b1 = Boundary("b1", [[0, 0, 0], [10, 0, 0]], "line_thin", pattern="solid")
    >>> b2 = Boundary("b2", [[0, 3, 0], [10, 3, 0]], "curbstone", height_m=0.12)
    >>> lane = Lane("l1", left="b2", right="b1", centerline=[[0, 1.5, 0], [10, 1.5, 0]],
    ...             direction="forward", width=[3.0, 3.0])
    >>> m = LaneMap([b1, b2], [lane]).validate()
    >>> [b.id for b in m.curbs], m.boundary("b1").length, lane.width_m
    (['b2'], 10.0, 3.0)
    """

    boundaries: list[Boundary] = field(default_factory=list)
    lanes: list[Lane] = field(default_factory=list)
    markings: list[Marking] = field(default_factory=list)
    epsg: int = 25832
    metadata: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"LaneMap({len(self.boundaries)} boundaries, {len(self.lanes)} lanes, "
                f"{len(self.markings)} markings, EPSG:{self.epsg})")

    def __eq__(self, other):
        if not isinstance(other, LaneMap):
            return NotImplemented

        def by_id(objs):
            return sorted(objs, key=lambda o: _natural_key(str(o.id)))

        return (self.epsg == other.epsg and self.metadata == other.metadata
                and all(len(a) == len(b) and all(x == y for x, y in zip(by_id(a), by_id(b)))
                        for a, b in ((self.boundaries, other.boundaries), (self.lanes, other.lanes),
                                     (self.markings, other.markings))))

    @property
    def lines(self) -> list[Boundary]:
        """Boundaries that are not road edges (painted and virtual lines)."""
        return [b for b in self.boundaries if b.kind not in CURB_KINDS]

    @property
    def curbs(self) -> list[Boundary]:
        """Road edges: boundaries of kind ``curbstone`` or ``road_border``."""
        return [b for b in self.boundaries if b.kind in CURB_KINDS]

    def boundary(self, id: str) -> Boundary:
        """The boundary with this id (a linear search); KeyError if there is none."""
        for b in self.boundaries:
            if b.id == id:
                return b
        raise KeyError(f"no boundary with id {id!r}")

    # -- validation ---------------------------------------------------------
    def validate(self) -> LaneMap:
        """Check the map against the model's rules and return it.

        Returns
        -------
        LaneMap
            ``self``, so ``m = LaneMap(...).validate()`` works.

        Raises
        ------
        InvalidMapError
            (a ValueError) naming the offending object and what is wrong with it:
            duplicate ids (across all objects), lane boundary or neighbour ids that
            do not exist, a kind, pattern, direction or marking type not allowed,
            geometry of the wrong shape or not finite, a width profile whose length
            differs from the centerline's, a polygon with fewer than 3 vertices or a
            repeated closing vertex, metadata or provenance that is not plain JSON.
        """
        if isinstance(self.epsg, bool) or not isinstance(self.epsg, int) or self.epsg <= 0:
            raise InvalidMapError(f"map: epsg must be a positive int, not {self.epsg!r}")
        _check_json("map", "metadata", self.metadata, dict)
        owner: dict[str, str] = {}
        for what, objs, cls in (("boundary", self.boundaries, Boundary), ("lane", self.lanes, Lane),
                                ("marking", self.markings, Marking)):
            for obj in objs:
                if not isinstance(obj, cls):
                    raise InvalidMapError(f"map: {what} list holds a {type(obj).__name__}, not a {cls.__name__}")
                _check_text(what, "id", obj.id, optional=False)
                if obj.id in owner:
                    raise InvalidMapError(f"duplicate id {obj.id!r}: used by a {owner[obj.id]} and a {what}")
                owner[obj.id] = what
        for b in self.boundaries:
            what = f"boundary {b.id!r}"
            _check_coords(what, "xyz", b.xyz, 2)
            _check_choice(what, "kind", b.kind, BOUNDARY_KINDS)
            _check_choice(what, "pattern", b.pattern, PATTERNS, optional=True)
            for name in ("stroke_m", "gap_m", "width_m", "height_m"):
                _check_float(what, name, getattr(b, name))
            for name in ("color", "road"):
                _check_text(what, name, getattr(b, name))
            _check_json(what, "provenance", b.provenance, dict)
        for ln in self.lanes:
            what = f"lane {ln.id!r}"
            _check_coords(what, "centerline", ln.centerline, 2)
            if ln.width.shape != (len(ln.centerline),):
                raise InvalidMapError(f"{what}: width profile has shape {ln.width.shape}, "
                                      f"expected ({len(ln.centerline)},), one width per centerline vertex")
            if not (np.isfinite(ln.width) & (ln.width >= 0)).all():
                raise InvalidMapError(f"{what}: width profile has negative, NaN or infinite values")
            _check_choice(what, "direction", ln.direction, DIRECTIONS)
            for name in ("kind", "left", "right"):
                _check_text(what, name, getattr(ln, name), optional=False)
            for name in ("road", "section"):
                _check_text(what, name, getattr(ln, name))
            if ln.index is not None and not (isinstance(ln.index, int) and abs(ln.index) <= _INT_LIMIT):
                raise InvalidMapError(f"{what}: index must be an int within +-2**53 or None, not {ln.index!r}")
            for side in ("left", "right"):
                ref = getattr(ln, side)
                if owner.get(ref) != "boundary":
                    found = f"is a {owner[ref]}" if ref in owner else "does not exist"
                    raise InvalidMapError(f"{what}: {side} boundary {ref!r} {found}")
            for name in ("predecessors", "successors"):
                refs = getattr(ln, name)
                if not isinstance(refs, list):
                    raise InvalidMapError(f"{what}: {name} must be a list of lane ids, not {refs!r}")
                for ref in refs:
                    if not isinstance(ref, str) or owner.get(ref) != "lane":
                        found = f"is a {owner[ref]}" if ref in owner else "does not exist"
                        raise InvalidMapError(f"{what}: {name[:-1]} lane {ref!r} {found}")
        for mk in self.markings:
            what = f"marking {mk.id!r}"
            _check_coords(what, "polygon", mk.polygon, 3)
            if np.array_equal(mk.polygon[0], mk.polygon[-1]):
                raise InvalidMapError(f"{what}: polygon repeats its first vertex at the end; "
                                      "give the ring without the closing vertex")
            if not isinstance(mk.type, str) or not (mk.type in MARKING_TYPES or mk.type.startswith("arrow_")):
                raise InvalidMapError(f"{what}: type {mk.type!r} is not one of {', '.join(MARKING_TYPES)} or arrow_*")
            for name in ("group", "boundary", "road"):
                _check_text(what, name, getattr(mk, name))
            if mk.boundary is not None and owner.get(mk.boundary) != "boundary":
                raise InvalidMapError(f"{what}: boundary {mk.boundary!r} does not exist")
        return self

    # -- GeoJSON ------------------------------------------------------------
    def _layers(self) -> dict[str, list]:
        key = lambda o: _natural_key(o.id)  # noqa: E731
        return {"boundaries": sorted(self.lines, key=key), "curbs": sorted(self.curbs, key=key),
                "markings": sorted(self.markings, key=key), "lanes": sorted(self.lanes, key=key)}

    def to_geojson(self, outdir: str | os.PathLike) -> dict[str, Path]:
        """Write the map as four GeoJSON files (see the module documentation).

        Parameters
        ----------
        outdir : path-like
            Directory, created if needed; existing files of the same names are replaced.

        Returns
        -------
        dict
            Layer name -> path written.
        """
        self.validate()
        outdir = Path(outdir)
        meta = _canon(self.metadata)
        written = {}
        for layer, objs in self._layers().items():
            gtype = "Polygon" if layer == "markings" else "LineString"
            feats = []
            for obj in objs:
                coords = _coords_of(obj).tolist()
                geom = {"type": gtype, "coordinates": [coords] if gtype == "Polygon" else coords}
                feats.append({"type": "Feature", "properties": _properties(obj), "geometry": geom})
            fc = {"type": "FeatureCollection", "name": layer, "crs": crs_member(self.epsg), "metadata": meta,
                  "features": feats}
            text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
            written[layer] = write_text_atomic(outdir / f"{layer}.geojson", text)
        return written

    @classmethod
    def from_geojson(cls, path: str | os.PathLike, *, validate: bool = True) -> LaneMap:
        """Read a map written by :meth:`to_geojson`.

        Parameters
        ----------
        path : path-like
            Directory holding some of ``boundaries``, ``curbs``, ``markings`` and
            ``lanes.geojson``; a missing file is an empty layer.
        validate : bool
            Check the map (:meth:`validate`) before returning it.

        Raises
        ------
        InputFileNotFoundError
            The directory does not exist or holds none of the four files.
        FileFormatError
            A file is not a FeatureCollection of the expected features (the message
            names the file), or the map read is not valid.
        """
        path = Path(path)
        if not path.is_dir():
            if path.exists():
                raise FileFormatError(f"{path}: is not a directory; give the directory holding lanes.geojson etc.")
            raise InputFileNotFoundError(path, "directory")
        objs: dict[str, list] = {layer: [] for layer in LAYERS}
        epsgs, metas = {}, {}
        for layer in LAYERS:
            fpath = path / f"{layer}.geojson"
            if not fpath.is_file():
                continue
            try:
                with open(fpath, encoding="utf-8") as fh:
                    fc = json.load(fh)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CorruptFileError(f"{fpath}: not valid JSON ({exc}); the file is damaged or truncated") from None
            if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection" \
                    or not isinstance(fc.get("features"), list):
                raise FileFormatError(f"{fpath}: not a GeoJSON FeatureCollection")
            crs = fc.get("crs")
            name = crs.get("properties", {}).get("name", "") if isinstance(crs, dict) else None
            epsg = 4326 if crs is None else _epsg_from_name(name) if isinstance(name, str) else None
            if epsg is None:
                raise CRSError(f"{fpath}: crs member {crs!r} does not name an EPSG code")
            epsgs[fpath] = epsg
            if "metadata" in fc:
                metas[fpath] = fc["metadata"]
            gtype = "Polygon" if layer == "markings" else "LineString"
            for i, feat in enumerate(fc["features"]):
                try:
                    geom, props = feat["geometry"], feat["properties"]
                    if geom["type"] != gtype:
                        raise ValueError(f"geometry is a {geom['type']}, expected a {gtype}")
                    coords = geom["coordinates"]
                    if gtype == "Polygon":
                        if len(coords) != 1:
                            raise ValueError("polygons with holes (or no ring) are not supported")
                        coords = coords[0]
                    objs[layer].append(_build(layer, props, np.array(coords, dtype=np.float64)))
                except (KeyError, TypeError, ValueError) as exc:
                    fid = feat.get("properties", {}).get("id") if isinstance(feat, dict) \
                        and isinstance(feat.get("properties"), dict) else None
                    msg = f"missing property {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise FileFormatError(f"{fpath}: feature {i} (id {fid!r}): {msg}") from None
        if not epsgs:
            raise InputFileNotFoundError(path / "lanes.geojson", "map file (none of boundaries/curbs/markings/"
                                                                  "lanes.geojson in this directory)")
        return cls._finish(objs, _one(epsgs, "CRS", 4326, CRSError), _one(metas, "metadata", {}), path, validate)

    @classmethod
    def _finish(cls, objs, epsg, metadata, source, validate) -> LaneMap:
        m = cls(objs["boundaries"] + objs["curbs"], objs["lanes"], objs["markings"], epsg=epsg,
                metadata={} if metadata is None else metadata)
        return m.validate_read(source) if validate else m

    def validate_read(self, source) -> LaneMap:
        """:meth:`validate` a map just read from *source*; a broken rule is a FileFormatError naming it."""
        try:
            return self.validate()
        except InvalidMapError as exc:
            raise FileFormatError(f"{source}: the map read is not valid: {exc}") from None

    # -- GeoPackage ---------------------------------------------------------
    def to_gpkg(self, path: str | os.PathLike) -> Path:
        """Write the map as a GeoPackage with the four layers (see the module documentation).

        Parameters
        ----------
        path : path-like
            Output file (``.gpkg``); replaced atomically if it exists.

        Returns
        -------
        Path
            The path written.
        """
        import pyogrio
        import pyogrio.raw
        import shapely

        self.validate()
        path = Path(path)
        with atomic_path(path) as tmp:
            # GDAL warns about a GeoPackage whose name does not end in .gpkg
            work = tmp.with_name(tmp.name + ".gpkg")
            work.unlink(missing_ok=True)
            meta = {_GPKG_METADATA_KEY: json.dumps(_canon(self.metadata), separators=(",", ":"))}
            # GDAL stamps each layer with the time of writing; a fixed stamp keeps the bytes reproducible
            old_date = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
            try:
                for layer, objs in self._layers().items():
                    polygon = layer == "markings"
                    geoms = [shapely.Polygon(o.polygon) if polygon else shapely.LineString(_coords_of(o))
                             for o in objs]
                    wkb = np.empty(len(geoms), dtype=object)
                    if geoms:
                        wkb[:] = shapely.to_wkb(np.array(geoms, dtype=object), output_dimension=3)
                    props = [_properties(o) for o in objs]
                    data, mask = zip(*(_column([p[name] for p in props], kind) for name, kind in _SCHEMAS[layer]))
                    pyogrio.raw.write(
                        work, wkb, list(data), [name for name, _ in _SCHEMAS[layer]], field_mask=list(mask),
                        layer=layer, driver="GPKG", geometry_type="Polygon Z" if polygon else "LineString Z",
                        crs=f"EPSG:{self.epsg}", encoding="UTF-8", layer_metadata=meta)
                os.replace(work, tmp)
            finally:
                pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old_date})
                work.unlink(missing_ok=True)
        return path

    @classmethod
    def from_gpkg(cls, path: str | os.PathLike, *, validate: bool = True) -> LaneMap:
        """Read a map written by :meth:`to_gpkg`; a missing layer is an empty one.

        Parameters
        ----------
        path : path-like
            GeoPackage file.
        validate : bool
            Check the map (:meth:`validate`) before returning it.

        Raises
        ------
        InputFileNotFoundError, FileFormatError, CRSError
        """
        import pyogrio
        import pyogrio.errors
        import pyogrio.raw
        import shapely

        path = Path(path)
        if not path.is_file():
            raise InputFileNotFoundError(path)
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise FileFormatError(f"{path}: not a GeoPackage (not an SQLite database)")
        try:
            present = {str(row[0]) for row in pyogrio.list_layers(path)}
        except pyogrio.errors.DataSourceError as exc:
            raise FileFormatError(f"{path}: cannot be read as a GeoPackage ({exc})") from None
        objs: dict[str, list] = {layer: [] for layer in LAYERS}
        epsgs, metas = {}, {}
        for layer in LAYERS:
            if layer not in present:
                continue
            src = f"{path} (layer {layer})"
            info = pyogrio.read_info(path, layer=layer)
            epsgs[src] = _epsg_from_name(info["crs"] or "")
            if epsgs[src] is None:
                raise CRSError(f"{src}: CRS {info['crs']!r} is not an EPSG code")
            text = (info.get("layer_metadata") or {}).get(_GPKG_METADATA_KEY)
            if text is not None:
                try:
                    metas[src] = json.loads(text)
                except ValueError as exc:
                    raise FileFormatError(f"{src}: metadata item {_GPKG_METADATA_KEY} is not JSON ({exc})") from None
            _, _, wkb, columns = pyogrio.raw.read(path, layer=layer)
            schema = dict(_SCHEMAS[layer])
            for i, g in enumerate(shapely.from_wkb(wkb)):
                props = {name: col[i] for name, col in zip(info["fields"], columns)}
                try:
                    props = {name: _decode(v, schema.get(name, "str")) for name, v in props.items()}
                    if layer == "markings":
                        if g is None or g.geom_type != "Polygon" or len(g.interiors):
                            raise ValueError("geometry is not a Polygon without holes")
                        g = g.exterior
                    elif g is None or g.geom_type != "LineString":
                        raise ValueError("geometry is not a LineString")
                    objs[layer].append(_build(layer, props, shapely.get_coordinates(g, include_z=True)))
                except (KeyError, TypeError, ValueError) as exc:
                    msg = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise FileFormatError(f"{src}: feature {i} (id {props.get('id')!r}): {msg}") from None
        return cls._finish(objs, _one(epsgs, "CRS", 25832, CRSError), _one(metas, "metadata", {}), path, validate)


def _column(values: list, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A pyogrio field array and its null mask."""
    mask = np.array([v is None for v in values], dtype=bool)
    if kind == "float":
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64), mask
    if kind == "int":
        return np.array([0 if v is None else v for v in values], dtype=np.int64), mask
    arr = np.empty(len(values), dtype=object)
    arr[:] = [json.dumps(v, ensure_ascii=False) if kind == "json" and v is not None else v for v in values]
    return arr, mask


def _decode(value: Any, kind: str):
    """A Python value from a pyogrio field value (nulls come back as None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "json":
        return json.loads(value)
    if kind == "int":
        return int(value)
    return float(value) if kind == "float" else value
