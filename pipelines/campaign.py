"""Campaign files: what a batch run processes and how.

A campaign is one TOML file. It names the survey drives (LAZ files and
trajectories), the project CRS, the tiling, stage parameters, the municipality
boundaries used to split deliveries, and the outputs. :func:`load_campaign`
reads and checks it completely before any work starts: every path must exist,
every glob must match, every value must be in range. A problem raises
:class:`hdmap.errors.ConfigError` whose message reads::

    <campaign file>: <key path>: <what is wrong>, got <value>; <what to do>

for example ``/data/b13/campaign.toml: tiles.size: must be a tile edge > 0 m,
got 0; ...``. Drives are counted from 0 in key paths (``drives[0]`` is the
first ``[[drives]]`` table).

Relative paths are relative to the directory of the campaign file, not the
working directory. ``hdmap simulate`` writes a ready-to-run ``campaign.toml``
next to its output.

A complete example, with every key (only ``campaign.name`` and one drive with
``name`` and ``laz`` are required; the values shown for the others are the
defaults unless a comment says otherwise)::

    # ---- the campaign ------------------------------------------------------
    [campaign]
    name = "b13-2026"          # required; used in manifests and output names
    crs = "EPSG:25832"         # project CRS: a projected CRS in metres
                               # (an EPSG code, "EPSG:nnnn", WKT or PROJ string)

    # ---- the drives: one [[drives]] table per drive (at least one) ---------
    [[drives]]
    name = "pass0"             # required, unique among the drives
    laz = ["raw/pass0_*.laz"]  # required: a path or glob, or a list of them;
                               # each must match at least one file; the files
                               # of a pattern are taken in sorted order, the
                               # patterns in the order given; a file must not
                               # belong to two drives
    trajectory = "pass0.txt"   # optional; must exist if given
    crs = "EPSG:25832"         # optional: source CRS of the LAZ files and the
                               # trajectory when the files do not carry one

    [[drives]]
    name = "pass1"
    laz = "raw/pass1.laz"

    # ---- tiling ------------------------------------------------------------
    [tiles]
    size = 100.0               # tile edge (m), at least 5
    buffer = 16.0              # classification context around a tile (m), 0..100
    vector_buffer = 35.0       # vectorisation context around a tile (m), 0..200

    # ---- stage parameters (optional) ---------------------------------------
    # [classify.<stage>] takes the parameters of hdmap.classify.STAGES,
    # [extract.<stage>] those of hdmap.vectorize.STAGES (both have a "curbs"
    # stage, hence the two namespaces). Unknown stages or names and values out
    # of range are errors; `hdmap` documents every parameter with its range.
    [classify.ground]
    cell = 0.25
    [extract.boundaries]
    max_gap = 20.0             # (example value; not the default)

    # ---- municipality boundaries (optional) ---------------------------------
    [municipalities]
    file = "boundaries.geojson"  # default: the bundled copy of BKG VG250
                                 # (GeoJSON features with "name" and "ags")
    attribution = "..."          # default: the bundled file's attribution
                                 # without `file`, else "" (the runner then
                                 # uses the file's own "license" properties)

    # ---- outputs (optional) -------------------------------------------------
    [outputs]
    formats = ["lanelet2", "opendrive", "gpkg", "laz"]   # any subset, not empty
    municipalities = true      # also write one delivery per municipality
    data_licence = ""          # licence of the data, written into manifests
                               # (e.g. "dl-de/by-2-0"); default: none stated

    # ---- ground truth (optional; written by `hdmap simulate`) ---------------
    [truth]
    dir = "truth"              # must exist if given

The campaign hash
-----------------
:attr:`Campaign.hash` (also :func:`campaign_hash`) identifies a campaign's
content, e.g. to decide whether ``--resume`` may reuse earlier work. It is the
SHA-256 (hex) of a canonical JSON document holding

* the parsed TOML content (keys sorted, no whitespace), so comments, blank
  lines, key order and quoting style do not change it, but any value does
  (``size = 100`` and ``size = 100.0`` count as different values), and
* for every LAZ file of every drive, in drive and file order: the drive name,
  the file's path relative to the campaign file's directory (``/``-separated)
  and its size in bytes. File contents are not read (that would take as long as
  the run); a file that is replaced by one of the same size keeps the hash.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyproj

from hdmap.crs import PROJECT_CRS, parse_crs
from hdmap.errors import ConfigError, HdmapError, InputFileNotFoundError, ParameterError
from hdmap.params import resolve_stages

__all__ = ["Drive", "Campaign", "load_campaign", "campaign_hash", "FORMATS", "HASH_VERSION"]

#: Output formats in their canonical order.
FORMATS = ("lanelet2", "opendrive", "gpkg", "laz")

#: Changes whenever the hashed content changes meaning (so old hashes never match by accident).
HASH_VERSION = "hdmap-campaign-v1"

DEFAULT_TILE_SIZE = 100.0
DEFAULT_BUFFER = 16.0
#: A tile's vectors must see all that decides a link at its edge: a gap of up to ``curbs.max_gap`` /
#: ``boundaries.max_gap`` (20 m) from the edge, and the side-road mouth test's reach (12 m) beyond it.
DEFAULT_VECTOR_BUFFER = 35.0
MIN_TILE_SIZE = 5.0
MAX_BUFFER = 100.0
MAX_VECTOR_BUFFER = 200.0

_TOP_KEYS = ("campaign", "drives", "tiles", "classify", "extract", "municipalities", "outputs", "truth")
_CAMPAIGN_KEYS = ("name", "crs")
_DRIVE_KEYS = ("name", "laz", "trajectory", "crs")
_TILES_KEYS = ("size", "buffer", "vector_buffer")
_MUNI_KEYS = ("file", "attribution")
_OUTPUT_KEYS = ("formats", "municipalities", "data_licence")
_TRUTH_KEYS = ("dir",)


@dataclass(frozen=True)
class Drive:
    """One survey drive: its LAZ files (absolute, in processing order) and trajectory."""

    name: str
    laz: tuple[Path, ...]
    trajectory: Path | None
    crs: pyproj.CRS | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "laz": [str(p) for p in self.laz],
            "trajectory": None if self.trajectory is None else str(self.trajectory),
            "crs": None if self.crs is None else self.crs.to_string(),
        }


@dataclass(frozen=True)
class Campaign:
    """A checked campaign file; see the module documentation for the format."""

    path: Path
    name: str
    crs: pyproj.CRS
    drives: tuple[Drive, ...]
    tile_size: float
    buffer: float
    vector_buffer: float
    classify_params: dict
    extract_params: dict
    municipalities_file: Path | None
    attribution: str
    formats: tuple[str, ...]
    per_municipality: bool
    data_licence: str
    truth_dir: Path | None
    hash: str

    def __hash__(self) -> int:  # the dict fields are unhashable; the content hash says it all
        return hash(self.hash)

    @property
    def dir(self) -> Path:
        """The directory relative paths in the campaign file are relative to."""
        return self.path.parent

    def to_dict(self) -> dict:
        """A JSON-able description (paths as strings, CRS as ``EPSG:nnnn`` or WKT) for manifests and logs."""
        return {
            "path": str(self.path),
            "name": self.name,
            "crs": self.crs.to_string(),
            "drives": [d.to_dict() for d in self.drives],
            "tiles": {"size": self.tile_size, "buffer": self.buffer, "vector_buffer": self.vector_buffer},
            "classify": _jsonable(self.classify_params),
            "extract": _jsonable(self.extract_params),
            "municipalities": {
                "file": None if self.municipalities_file is None else str(self.municipalities_file),
                "attribution": self.attribution,
            },
            "outputs": {
                "formats": list(self.formats),
                "municipalities": self.per_municipality,
                "data_licence": self.data_licence,
            },
            "truth": {"dir": None if self.truth_dir is None else str(self.truth_dir)},
            "hash": self.hash,
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # TOML dates and times


class _Reader:
    """Checks values of one campaign file; every failure names the file and key path."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent

    def fail(self, where: str, msg: str):
        raise ConfigError(f"{self.path}: {where}: {msg}")

    def table(self, data: dict, key: str, allowed, *, where: str | None = None) -> dict:
        where = where or key
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(where, f"expected a table [{where}], got {_show(value)}; write it as a [{where}] section")
        self.keys(value, where, allowed)
        return value

    def keys(self, d: dict, where: str, allowed):
        for k in d:
            if k not in allowed:
                label = "a [[drives]] table" if where.startswith("drives[") else f"[{where}]" if where else "the top level"
                self.fail(f"{where}.{k}" if where else k,
                          f"unknown key; {label} has: {', '.join(sorted(allowed))}")

    def string(self, d: dict, key: str, where: str, *, default=None, required=False, nonempty=False):
        if key not in d:
            if required:
                self.fail(f"{where}.{key}", "missing; this key is required")
            return default
        v = d[key]
        if not isinstance(v, str):
            self.fail(f"{where}.{key}", f"expected a string, got {_show(v)}; put the value in quotes")
        if nonempty and not v.strip():
            self.fail(f"{where}.{key}", f"must not be empty, got {v!r}; give a name")
        return v

    def number(self, d: dict, key: str, where: str, default: float, *, lo: float, hi: float, what: str):
        if key not in d:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"{where}.{key}", f"expected a number ({what}), got {_show(v)}; write a plain number")
        if not math.isfinite(v):
            self.fail(f"{where}.{key}", f"must be a finite number ({what}), got {v!r}")
        if v < lo or v > hi:
            rng = f"of at least {lo:g}" if hi == math.inf else f"between {lo:g} and {hi:g}"
            self.fail(f"{where}.{key}", f"must be {what} {rng}, got {v!r}; choose a value in range")
        return float(v)

    def boolean(self, d: dict, key: str, where: str, default: bool) -> bool:
        if key not in d:
            return default
        v = d[key]
        if not isinstance(v, bool):
            self.fail(f"{where}.{key}", f"expected true or false, got {_show(v)}")
        return v

    def crs(self, d: dict, key: str, where: str, *, project: bool):
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            self.fail(f"{where}.{key}", f"expected a CRS such as \"EPSG:25832\", got {_show(v)}")
        try:
            crs = parse_crs(v, source=f"{where}.{key}")
        except HdmapError:
            self.fail(f"{where}.{key}", f"{v!r} is not a CRS pyproj knows; give an EPSG code such as "
                                        "\"EPSG:25832\", or a WKT/PROJ string")
        if project:
            units = {a.unit_name for a in crs.axis_info[:2]}
            if not crs.is_projected or not units <= {"metre", "meter"}:
                kind = "geographic (degrees)" if crs.is_geographic else (
                    "projected in " + "/".join(sorted(units)) if crs.is_projected else "not projected")
                self.fail(f"{where}.{key}", f"{v!r} is {kind}; the project CRS must be a projected CRS in metres, "
                                            "e.g. \"EPSG:25832\" (ETRS89 / UTM 32N)")
        return crs

    def existing(self, value: str, where: str, what: str, *, directory: bool = False) -> Path:
        p = Path(value).expanduser()
        full = p if p.is_absolute() else self.base / p
        if not full.exists():
            self.fail(where, f"{value!r} does not exist in {self.base}; check the path of the {what}")
        if directory and not full.is_dir():
            self.fail(where, f"{value!r} is not a directory; name the {what}")
        if not directory and full.is_dir():
            self.fail(where, f"{value!r} is a directory; name the {what} file")
        return full.resolve()

    def glob(self, pattern: str, where: str) -> list[Path]:
        """Files matching *pattern* (relative to the campaign dir), sorted."""
        if not pattern.strip():
            self.fail(where, "empty path; give a LAZ file or a glob such as \"raw/*.laz\"")
        expanded = os.path.expanduser(pattern)
        if glob.has_magic(expanded):
            if os.path.isabs(expanded):
                hits = glob.glob(expanded, recursive=True)
            else:  # root_dir: glob characters in the campaign's own directory name are not patterns
                hits = [os.path.join(self.base, h) for h in glob.glob(expanded, root_dir=self.base, recursive=True)]
            files = sorted({Path(h).resolve() for h in hits if os.path.isfile(h)})
            if not files:
                self.fail(where, f"{pattern!r} matches no file in {self.base}; check the path or glob")
            return files
        full = Path(expanded)
        full = full if full.is_absolute() else self.base / full
        if not full.exists():
            self.fail(where, f"{pattern!r} matches no file in {self.base}; check the path or glob")
        if full.is_dir():
            self.fail(where, f"{pattern!r} is a directory; name the LAZ files or a glob such as "
                             f"\"{pattern.rstrip('/')}/*.laz\"")
        return [full.resolve()]


def _show(v: Any) -> str:
    """A value for an error message: its repr, and its TOML type where the repr does not say it."""
    kinds = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    kind = kinds.get(type(v), type(v).__name__)
    text = repr(v)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


def _read_toml(path) -> tuple[Path, dict]:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputFileNotFoundError(p, "campaign file")
    p = p.resolve()
    if p.is_dir():
        hint = f"; did you mean {p / 'campaign.toml'}?" if (p / "campaign.toml").is_file() else ""
        raise ConfigError(f"{p}: is a directory, not a campaign file; give the campaign TOML file{hint}")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); a campaign file is TOML in UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}; fix the syntax there") from None
    return p, data


def _stage_params(r: _Reader, data: dict, key: str, stages: dict) -> dict:
    """Check the ``[key.<stage>]`` tables against *stages*; return the given values, nested and checked."""
    given = data.get(key, {})
    if not isinstance(given, dict):
        r.fail(key, f"expected tables [{key}.<stage>], got {_show(given)}; write e.g. [{key}.{next(iter(stages))}]")
    for stage, names in given.items():
        for name, v in (names.items() if isinstance(names, dict) else [("", names)]):
            if isinstance(v, float) and not math.isfinite(v):
                where = f"{key}.{stage}.{name}" if name else f"{key}.{stage}"
                r.fail(where, f"must be a finite number, got {v!r}; give a value in the parameter's range")
    try:
        resolved = resolve_stages(stages, given)
    except ParameterError as exc:  # message: "<stage>.<name>: ..." or "<stage>: ..."
        raise ConfigError(f"{r.path}: {key}.{exc}") from None
    nested: dict = {}
    for k, v in given.items():
        if "." in k:
            stage, name = k.split(".", 1)
            nested.setdefault(stage, {})[name] = v
        else:
            nested.setdefault(k, {}).update(v)
    return {stage: {name: copy.deepcopy(resolved[stage][name]) for name in names} for stage, names in nested.items()}


def _drives(r: _Reader, data: dict) -> tuple[Drive, ...]:
    raw = data.get("drives")
    if raw is None or raw == []:
        r.fail("drives", "no drives; add at least one [[drives]] table with a name and laz files")
    if isinstance(raw, dict):
        r.fail("drives", "is a single table [drives]; write [[drives]] (double brackets) for each drive")
    if not isinstance(raw, list) or not all(isinstance(d, dict) for d in raw):
        r.fail("drives", f"expected [[drives]] tables, got {_show(raw)}")
    drives = []
    owner: dict[Path, tuple[int, str]] = {}
    names: dict[str, int] = {}
    for i, d in enumerate(raw):
        where = f"drives[{i}]"
        r.keys(d, where, _DRIVE_KEYS)
        name = r.string(d, "name", where, required=True, nonempty=True).strip()
        if "/" in name or "\\" in name:
            r.fail(f"{where}.name", f"must not contain / or \\, got {name!r}; drive names become file names")
        if name in names:
            r.fail(f"{where}.name", f"{name!r} is also the name of drives[{names[name]}]; give each drive its own name")
        names[name] = i
        if "laz" not in d:
            r.fail(f"{where}.laz", "missing; give the drive's LAZ files, e.g. laz = [\"raw/pass0_*.laz\"]")
        patterns = d["laz"]
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not patterns or not all(isinstance(s, str) for s in patterns):
            r.fail(f"{where}.laz", f"expected a path or glob or a non-empty list of them, got {_show(d['laz'])}")
        files: list[Path] = []
        seen: set[Path] = set()
        for pattern in patterns:
            for f in r.glob(pattern, f"{where}.laz"):
                if f in owner and owner[f][0] != i:
                    j, other = owner[f]
                    r.fail(f"{where}.laz", f"{str(f)!r} (from {pattern!r}) is also a file of drives[{j}] ({other!r}); "
                                           "a file must belong to one drive")
                owner[f] = (i, name)
                if f not in seen:
                    seen.add(f)
                    files.append(f)
        traj = None
        t = r.string(d, "trajectory", where)
        if t is not None:
            traj = r.existing(t, f"{where}.trajectory", "trajectory")
        crs = r.crs(d, "crs", where, project=False) if "crs" in d else None
        drives.append(Drive(name, tuple(files), traj, crs))
    return tuple(drives)


def _relname(f: Path, base: Path) -> str:
    return Path(os.path.relpath(f, base)).as_posix()


def _hash(data: dict, drives: tuple[Drive, ...], base: Path) -> str:
    files = []
    for d in drives:
        for f in d.laz:
            files.append([d.name, _relname(f, base), f.stat().st_size])
    doc = {"version": HASH_VERSION, "campaign": _jsonable(data), "laz": files}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def load_campaign(path) -> Campaign:
    """Read and check the campaign file *path* (format: see the module documentation).

    Raises
    ------
    hdmap.errors.InputFileNotFoundError
        If *path* does not exist.
    hdmap.errors.ConfigError
        For anything wrong in the file: syntax, unknown keys, wrong types,
        values out of range, missing LAZ/trajectory/boundary files, globs that
        match nothing. The message names the file and the key.
    """
    from hdmap import classify as _classify
    from hdmap import vectorize as _vectorize

    path, data = _read_toml(path)
    r = _Reader(path)
    r.keys(data, "", _TOP_KEYS)

    camp = r.table(data, "campaign", _CAMPAIGN_KEYS)
    if "campaign" not in data:
        r.fail("campaign", "missing; add a [campaign] table with at least name = \"...\"")
    name = r.string(camp, "name", "campaign", required=True, nonempty=True).strip()
    if "/" in name or "\\" in name:
        r.fail("campaign.name", f"must not contain / or \\, got {name!r}; the name is used in file names")
    crs = r.crs(camp, "crs", "campaign", project=True) if "crs" in camp else PROJECT_CRS

    tiles = r.table(data, "tiles", _TILES_KEYS)
    if "size" in tiles and not isinstance(tiles["size"], bool) and isinstance(tiles["size"], (int, float)) \
            and tiles["size"] <= 0:
        r.fail("tiles.size", f"must be a tile edge > 0 m, got {tiles['size']!r}; "
                             f"use at least {MIN_TILE_SIZE:g} m (default {DEFAULT_TILE_SIZE:g})")
    tile_size = r.number(tiles, "size", "tiles", DEFAULT_TILE_SIZE, lo=MIN_TILE_SIZE, hi=math.inf,
                         what="a tile edge in m")
    buffer = r.number(tiles, "buffer", "tiles", DEFAULT_BUFFER, lo=0.0, hi=MAX_BUFFER, what="a buffer in m")
    vector_buffer = r.number(tiles, "vector_buffer", "tiles", DEFAULT_VECTOR_BUFFER, lo=0.0, hi=MAX_VECTOR_BUFFER,
                             what="a buffer in m")

    classify_params = _stage_params(r, data, "classify", _classify.STAGES)
    extract_params = _stage_params(r, data, "extract", _vectorize.STAGES)

    drives = _drives(r, data)

    muni = r.table(data, "municipalities", _MUNI_KEYS)
    muni_file = None
    f = r.string(muni, "file", "municipalities")
    if f is not None:
        muni_file = r.existing(f, "municipalities.file", "municipality boundary file")
        _check_municipalities(r, muni_file, crs)
    from hdmap.municipalities import BUNDLED_ATTRIBUTION

    attribution = r.string(muni, "attribution", "municipalities",
                           default=BUNDLED_ATTRIBUTION if muni_file is None else "")

    out = r.table(data, "outputs", _OUTPUT_KEYS)
    formats = FORMATS
    if "formats" in out:
        given = out["formats"]
        if isinstance(given, str):
            given = [given]
        if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
            r.fail("outputs.formats", f"expected a list of format names, got {_show(out['formats'])}; "
                                      f"choose from {', '.join(FORMATS)}")
        for s in given:
            if s not in FORMATS:
                r.fail("outputs.formats", f"unknown format {s!r}; formats are: {', '.join(FORMATS)}")
        if not given:
            r.fail("outputs.formats", f"empty; name at least one of {', '.join(FORMATS)} (or leave the key out for all)")
        formats = tuple(x for x in FORMATS if x in given)
    per_municipality = r.boolean(out, "municipalities", "outputs", True)
    data_licence = r.string(out, "data_licence", "outputs", default="")

    truth = r.table(data, "truth", _TRUTH_KEYS)
    truth_dir = None
    t = r.string(truth, "dir", "truth")
    if t is not None:
        truth_dir = r.existing(t, "truth.dir", "ground-truth directory", directory=True)

    return Campaign(
        path=path, name=name, crs=crs, drives=drives, tile_size=tile_size, buffer=buffer,
        vector_buffer=vector_buffer, classify_params=classify_params, extract_params=extract_params,
        municipalities_file=muni_file, attribution=attribution, formats=formats,
        per_municipality=per_municipality, data_licence=data_licence, truth_dir=truth_dir,
        hash=_hash(data, drives, path.parent),
    )


def _check_municipalities(r: _Reader, file: Path, crs: pyproj.CRS):
    """Load the boundary file once so a bad file fails now, not at the end of a run."""
    from hdmap.municipalities import load_municipalities

    try:
        load_municipalities(file, crs=crs)
    except HdmapError as exc:
        r.fail("municipalities.file", f"{exc}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # malformed geometry
        r.fail("municipalities.file", f"{str(file)!r} has unusable geometry ({type(exc).__name__}: {exc}); "
                                      "give a GeoJSON FeatureCollection of polygons with name and ags properties")


def campaign_hash(path) -> str:
    """The content hash of the campaign file *path* (:attr:`Campaign.hash`; see the module documentation)."""
    return load_campaign(path).hash
