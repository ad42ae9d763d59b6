"""Reading and writing LAS/LAZ (and reading COPC) point clouds.

Reading
    :func:`read` loads a whole file, :func:`iter_chunks` yields it in chunks of
    :data:`DEFAULT_CHUNK_SIZE` points so memory follows the chunk, not the file,
    :func:`read_copc` reads the points of a COPC file inside given bounds. All
    three return :class:`~hdmap.PointCloud` objects with every LAS dimension as
    an attribute, the CRS from the file's WKT VLR or GeoTIFF keys (or given by
    the caller) and, optionally, reprojected to another CRS.

Writing
    :func:`write` writes a whole cloud, :class:`LasWriter` streams chunks. Both
    keep the attributes and extra-bytes dimensions of the source, compress when
    the name ends in ``.laz``, and write to a temporary file renamed on success,
    so a failure never leaves a half-written file. Classification codes above 31
    (road marking 64, curb 67, ...) need point formats 6-10: a cloud read from a
    legacy format (0-5) is written in the matching 1.4 format then.

LAS versions 1.2-1.4 (and laspy's 1.5) and point formats 0-10 are supported.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import logging
import os
import struct
from pathlib import Path
from typing import Iterator, Sequence

import laspy
import numpy as np
import pyproj

from . import _atomic
from ._version import __version__
from .crs import crs_label, parse_crs, transform_xyz
from .errors import (
    CorruptFileError,
    CRSError,
    EmptyInputError,
    FileFormatError,
    HdmapError,
    InputFileNotFoundError,
    InvalidCoordinatesError,
)
from .pointcloud import LasLayout, PointCloud

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "read",
    "iter_chunks",
    "read_copc",
    "read_header",
    "file_crs",
    "write",
    "LasWriter",
]

logger = logging.getLogger(__name__)

#: Points per chunk for :func:`iter_chunks` and the streaming commands. One
#: million points take about 60 MB as a PointCloud (xyz float64 + the usual LAS
#: attributes); laspy/lazrs decode a chunk in parallel.
DEFAULT_CHUNK_SIZE = 1_000_000

_LAZ_BACKEND = laspy.LazBackend.LazrsParallel
_COORD_DIMS = ("X", "Y", "Z")
_GPS_EPOCH = _dt.datetime(1980, 1, 6)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputFileNotFoundError(path, "point-cloud file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory, expected a LAS/LAZ file")


@contextlib.contextmanager
def _las_errors(path: Path):
    """Translate laspy/lazrs/OS errors about *path* into hdmap errors."""
    try:
        yield
    except HdmapError:
        raise
    except laspy.errors.LaspyException as exc:
        msg = str(exc)
        if "signature" in msg.lower() or "too small" in msg.lower() or "to small" in msg.lower():
            raise FileFormatError(
                f"{path}: not a LAS/LAZ file ({msg}); hdmap reads ASPRS LAS 1.2-1.4 and LAZ"
            ) from None
        raise CorruptFileError(f"{path}: cannot be read as LAS/LAZ ({msg}); re-export or re-copy the file") from None
    except (EOFError, struct.error) as exc:
        raise CorruptFileError(f"{path}: file ends early ({exc}); it is truncated, re-copy it from the source") from None
    except Exception as exc:  # lazrs raises its own LazrsError (a plain Exception subclass)
        if type(exc).__module__.startswith("lazrs") or "lazrs" in type(exc).__name__.lower():
            raise CorruptFileError(
                f"{path}: LAZ data is truncated or corrupt ({exc}); re-copy the file or re-export it from the source"
            ) from None
        raise


def _check_header(header: laspy.LasHeader, path: Path) -> None:
    scales = np.asarray(header.scales, dtype=float)
    offsets = np.asarray(header.offsets, dtype=float)
    if not (np.isfinite(scales).all() and np.isfinite(offsets).all()):
        raise InvalidCoordinatesError(
            f"{path}: header scale {scales.tolist()} / offset {offsets.tolist()} is NaN or infinite, "
            "so no coordinate can be computed; repair the header (e.g. re-export the file)"
        )
    if (scales == 0).any():
        raise InvalidCoordinatesError(f"{path}: header scale {scales.tolist()} contains 0; repair the header")


def _check_size(header: laspy.LasHeader, path: Path) -> None:
    """Detect a truncated file from its header before decoding anything."""
    size = path.stat().st_size
    start = header.offset_to_point_data
    n = header.point_count
    if n == 0:
        return
    if header.are_points_compressed:
        with open(path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(8)
        if len(raw) < 8:
            raise CorruptFileError(f"{path}: LAZ file ends before its point data; it is truncated, re-copy it")
        (table_offset,) = struct.unpack("<q", raw)
        if table_offset == -1 or table_offset > size:
            raise CorruptFileError(
                f"{path}: LAZ chunk table lies beyond the end of the file ({table_offset} > {size} bytes); "
                "the file is truncated or was not closed by its writer, re-copy or re-export it"
            )
    else:
        need = start + n * header.point_format.size
        if size < need:
            raise CorruptFileError(
                f"{path}: truncated: {n} points need {need} bytes, the file has {size}; re-copy it from the source"
            )


def read_header(path: str | os.PathLike) -> laspy.LasHeader:
    """The LAS header of *path*, checked for the usual damage.

    Raises
    ------
    hdmap.errors.InputFileNotFoundError, FileFormatError, CorruptFileError, InvalidCoordinatesError
    """
    path = Path(path)
    _check_exists(path)
    with _las_errors(path):
        with laspy.open(path, laz_backend=_LAZ_BACKEND) as reader:
            header = reader.header
    _check_header(header, path)
    _check_size(header, path)
    return header


def file_crs(header: laspy.LasHeader, path) -> pyproj.CRS | None:
    """CRS from the WKT VLR (preferred) or GeoTIFF keys of *header*, or None."""
    try:
        return header.parse_crs(prefer_wkt=True)
    except Exception as exc:  # malformed VLR content: treat as absent, but say so
        logger.warning("%s: cannot parse the CRS VLR (%s); treating the file as having none", path, exc)
        return None


def _resolve_crs(header, path: Path, crs, require: bool) -> pyproj.CRS | None:
    found = file_crs(header, path)
    if crs is not None:
        given = parse_crs(crs, source=f"crs for {path}")
        if found is not None and not found.equals(given):
            logger.warning("%s: file says %s, using the given %s", path, crs_label(found), crs_label(given))
        return given
    if found is None and require:
        raise CRSError(
            f"{path}: no CRS in the file (no WKT VLR or GeoTIFF keys) and none given; "
            "pass crs='EPSG:25832' (command line: --crs EPSG:25832) or the source system of the survey"
        )
    return found


def _layout(header: laspy.LasHeader) -> LasLayout:
    return LasLayout(
        point_format=header.point_format.id,
        version=str(header.version),
        scales=np.array(header.scales, dtype=np.float64),
        offsets=np.array(header.offsets, dtype=np.float64),
        extra_dims=tuple((d.name, d.description or "") for d in header.point_format.extra_dimensions),
        header=header,
    )


def _record_to_cloud(record, header, crs, layout, to_crs, path) -> PointCloud:
    n = len(record)
    xyz = np.empty((n, 3), dtype=np.float64)
    xyz[:, 0] = record.x
    xyz[:, 1] = record.y
    xyz[:, 2] = record.z
    attrs = {}
    arr = record.array
    sub = _sub_fields(record.point_format.id)
    standard = set(record.point_format.standard_dimension_names)
    for name in record.point_format.dimension_names:
        if name in _COORD_DIMS:
            continue
        if name in sub:
            composed, mask, lsb = sub[name]
            attrs[name] = ((arr[composed] & mask) >> lsb).astype(np.uint8)
        elif name in standard:
            attrs[name] = np.ascontiguousarray(arr[name])
        else:  # extra bytes, possibly scaled: laspy applies scale and offset
            attrs[name] = np.array(record[name])
    if to_crs is not None and crs is not None:
        xyz = transform_xyz(xyz, crs, to_crs)
        crs = to_crs
    return PointCloud._unchecked(xyz, attrs, crs, layout)


def _target_crs(to_crs, crs, path) -> pyproj.CRS | None:
    if to_crs is None:
        return None
    target = parse_crs(to_crs, source="to_crs")
    if crs is None:
        raise CRSError(f"{path}: cannot reproject to {crs_label(target)}: the file has no CRS; pass crs=...")
    return target


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------
def read(path, *, crs=None, to_crs=None, require_crs: bool = True, allow_empty: bool = False) -> PointCloud:
    """Read a whole LAS/LAZ file.

    Parameters
    ----------
    path : str or path-like
    crs : CRS-like, optional
        The CRS of the coordinates in the file. Overrides the file's own VLR
        (with a warning if they differ); needed when the file has none.
    to_crs : CRS-like, optional
        Reproject the points to this CRS (chunk by chunk).
    require_crs : bool, default True
        Raise :class:`~hdmap.errors.CRSError` if no CRS is known.
    allow_empty : bool, default False
        Return an empty cloud instead of raising for a file with no points.

    Returns
    -------
    PointCloud

    Examples
    --------
    >>> cloud = read("drive_0.laz")                         # doctest: +SKIP
    >>> cloud = read("gk4.las", to_crs="EPSG:25832")         # doctest: +SKIP
    """
    path = Path(path)
    header = read_header(path)
    crs_ = _resolve_crs(header, path, crs, require_crs)
    target = _target_crs(to_crs, crs_, path)
    if header.point_count == 0 and not allow_empty:
        raise EmptyInputError(f"{path}: the file holds no points; check the export that produced it")
    layout = _layout(header)
    with _las_errors(path):
        with laspy.open(path, laz_backend=_LAZ_BACKEND) as reader:
            record = reader.read_points(header.point_count) if header.point_count else reader.read_points(0)
    if len(record) != header.point_count:
        raise CorruptFileError(
            f"{path}: header promises {header.point_count} points, the file holds {len(record)}; it is truncated"
        )
    return _record_to_cloud(record, header, crs_, layout, target, path)


def iter_chunks(
    path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    crs=None,
    to_crs=None,
    require_crs: bool = True,
    allow_empty: bool = False,
) -> Iterator[PointCloud]:
    """Yield a LAS/LAZ file as PointClouds of at most *chunk_size* points.

    Concatenating the chunks gives exactly what :func:`read` returns; peak
    memory is that of one chunk (plus the decoder's buffers), whatever the size
    of the file. Parameters as for :func:`read`.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive number of points, got {chunk_size}")
    path = Path(path)
    header = read_header(path)
    crs_ = _resolve_crs(header, path, crs, require_crs)
    target = _target_crs(to_crs, crs_, path)
    if header.point_count == 0 and not allow_empty:
        raise EmptyInputError(f"{path}: the file holds no points; check the export that produced it")
    layout = _layout(header)
    seen = 0
    with _las_errors(path):
        with laspy.open(path, laz_backend=_LAZ_BACKEND) as reader:
            for record in reader.chunk_iterator(int(chunk_size)):
                if len(record) == 0:
                    break
                seen += len(record)
                yield _record_to_cloud(record, header, crs_, layout, target, path)
    if seen != header.point_count:
        raise CorruptFileError(
            f"{path}: header promises {header.point_count} points, the file holds {seen}; it is truncated"
        )


def read_copc(path, bounds: Sequence[float] | None = None, *, crs=None, to_crs=None, resolution: float | None = None,
              require_crs: bool = True) -> PointCloud:
    """Read the points of a COPC file inside *bounds*.

    Parameters
    ----------
    path : str or path-like
        A cloud-optimised point cloud (``.copc.laz``).
    bounds : sequence of 4 or 6 floats, optional
        ``(xmin, ymin, xmax, ymax)`` or ``(xmin, ymin, zmin, xmax, ymax, zmax)``
        in the file's CRS; ``None`` reads everything. Only the octree nodes
        that touch the box are decoded; the points are then clipped exactly.
    resolution : float, optional
        Stop descending the octree once this point spacing is reached.
    crs, to_crs, require_crs
        As for :func:`read`.
    """
    path = Path(path)
    header = read_header(path)
    crs_ = _resolve_crs(header, path, crs, require_crs)
    target = _target_crs(to_crs, crs_, path)
    box = None
    if bounds is not None:
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape not in ((4,), (6,)) or not np.isfinite(b).all():
            raise ValueError(f"bounds must be 4 or 6 finite numbers (xmin, ymin[, zmin], xmax, ymax[, zmax]), got {bounds!r}")
        half = len(b) // 2
        mins, maxs = b[:half], b[half:]
        if (mins > maxs).any():
            raise ValueError(f"bounds {bounds!r}: a minimum is larger than its maximum")
        box = laspy.copc.Bounds(mins=mins, maxs=maxs)
    if not any(getattr(v, "user_id", "") == "copc" and getattr(v, "record_id", None) == 1 for v in header.vlrs):
        raise FileFormatError(f"{path}: not a COPC file (no COPC info VLR); use hdmap.io.read for plain LAS/LAZ")
    with _las_errors(path):
        with laspy.CopcReader.open(str(path)) as reader:
            record = reader.query(bounds=box, resolution=resolution)
    layout = _layout(header)
    cloud = _record_to_cloud(record, header, crs_, layout, None, path)
    if box is not None:  # nodes are coarser than the box: clip exactly
        d = len(box.mins)
        inside = np.all((cloud.xyz[:, :d] >= box.mins) & (cloud.xyz[:, :d] <= box.maxs), axis=1)
        cloud = cloud[inside]
    if target is not None:
        cloud = PointCloud._unchecked(transform_xyz(cloud.xyz, crs_, target), cloud.attrs, target, layout)
    return cloud


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
_LEGACY_TO_NEW = {0: 6, 1: 6, 2: 7, 3: 7, 4: 9, 5: 10}


def _infer_point_format(names: set[str]) -> int:
    rgb = {"red", "green", "blue"} <= names
    if "nir" in names and rgb:
        return 8
    if "wavepacket_index" in names:
        return 10 if rgb else 9
    return 7 if rgb else 6


def _gps_date(gps_time_min: float) -> _dt.date:
    """Calendar date of an adjusted standard GPS time (GPS seconds - 1e9)."""
    return (_GPS_EPOCH + _dt.timedelta(seconds=float(gps_time_min) + 1e9)).date()


class LasWriter:
    """Stream point clouds into one LAS/LAZ file, atomically.

    The header is built from the first chunk written (and the source layout it
    carries, if any). Nothing appears at *path* until :meth:`close` succeeds;
    on an exception inside the ``with`` block the temporary file is removed.

    Parameters
    ----------
    path : str or path-like
        Output file; ``.laz`` compresses (unless *compress* says otherwise).
    crs : CRS-like, optional
        CRS to record; defaults to the CRS of the first chunk.
    point_format : int, optional
        Force a point format (0-10). By default the source format is kept, or
        upgraded to 6-10 when a classification code above 31 is written; new
        clouds get format 6 (7 with RGB, 8 with RGB+NIR).
    scales, offsets : sequence of 3 floats, optional
        Coordinate resolution and offset; default the source's, else 1 mm and a
        round offset near the first chunk.
    compress : bool, optional
        Default from the file suffix.
    creation_date : datetime.date, optional
        Default: the source's; else the survey day from adjusted standard GPS
        time; else 1980-01-06 (the GPS epoch) so output bytes never depend on
        the day a file was written.
    system_identifier : str, optional

    Examples
    --------
    >>> with LasWriter("out.laz") as w:                              # doctest: +SKIP
    ...     for chunk in iter_chunks("in.laz"):
    ...         w.write(chunk.with_attrs(classification=classify(chunk)))
    """

    def __init__(self, path, *, crs=None, point_format: int | None = None, scales=None, offsets=None,
                 compress: bool | None = None, creation_date: _dt.date | None = None,
                 system_identifier: str | None = None, max_class: int | None = None):
        self.path = Path(path)
        self._crs = parse_crs(crs, source="crs") if crs is not None else None
        self._point_format = point_format
        self._scales = None if scales is None else np.asarray(scales, dtype=np.float64)
        self._offsets = None if offsets is None else np.asarray(offsets, dtype=np.float64)
        self._compress = self.path.suffix.lower() == ".laz" if compress is None else bool(compress)
        self._creation_date = creation_date
        self._system_identifier = system_identifier
        self._max_class = max_class
        self._ctx = None
        self._tmp: Path | None = None
        self._writer = None
        self._header: laspy.LasHeader | None = None
        self._names: list[str] | None = None
        self.point_count = 0

    # context manager ------------------------------------------------------
    def __enter__(self) -> "LasWriter":
        self._ctx = _atomic.atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        ctx, self._ctx = self._ctx, None
        if exc_type is not None:
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    self._writer.close()
            return bool(ctx.__exit__(exc_type, exc, tb))  # removes the temporary file
        try:
            if self._writer is None:
                raise EmptyInputError(f"{self.path}: nothing was written (no points); refusing to create an empty file")
            self._writer.close()
        except BaseException as err:
            ctx.__exit__(type(err), err, err.__traceback__)
            raise
        ctx.__exit__(None, None, None)
        return False

    # header ---------------------------------------------------------------
    def _build_header(self, cloud: PointCloud) -> laspy.LasHeader:
        layout = cloud.layout
        names = set(cloud.attrs)
        max_class = self._max_class
        if max_class is None and "classification" in cloud.attrs and len(cloud):
            max_class = int(cloud.attrs["classification"].max())
        if self._point_format is not None:
            fmt = int(self._point_format)
        elif layout is not None:
            fmt = layout.point_format
            if fmt < 6 and max_class is not None and max_class > 31:
                fmt = _LEGACY_TO_NEW[fmt]
                logger.info("%s: classes above 31 need LAS 1.4; writing point format %d instead of %d",
                            self.path, fmt, layout.point_format)
        else:
            fmt = _infer_point_format(names)
        if not 0 <= fmt <= 10:
            raise ValueError(f"point_format must be 0-10, got {fmt}")
        if fmt < 6 and max_class is not None and max_class > 31:
            raise ValueError(f"{self.path}: point format {fmt} stores classes 0-31 only, got {max_class}; use 6-10")

        template = layout.header if layout is not None else None
        if template is not None and template.point_format.id == fmt:
            header = template.copy()
            header.partial_reset()
        else:
            version = "1.4" if fmt >= 6 else (layout.version if layout is not None else "1.2")
            header = laspy.LasHeader(point_format=fmt, version=version)
            if template is not None:
                header.system_identifier = template.system_identifier
                header.creation_date = template.creation_date
                header.global_encoding.gps_time_type = template.global_encoding.gps_time_type
                header.scales = template.scales
                header.offsets = template.offsets
                for vlr in template.vlrs:
                    if type(vlr).__name__ in {"WktCoordinateSystemVlr", "GeoKeyDirectoryVlr", "GeoAsciiParamsVlr",
                                              "GeoDoubleParamsVlr", "ExtraBytesVlr", "LasZipVlr"}:
                        continue
                    header.vlrs.append(vlr)
            else:
                header.global_encoding.gps_time_type = laspy.header.GpsTimeType.STANDARD
            extra = []
            if template is not None:  # the source's extra dimensions, exactly (type, scale, offset, no-data)
                extra = [
                    laspy.ExtraBytesParams(name=d.name, type=d.dtype, description=d.description,
                                           offsets=d.offsets, scales=d.scales, no_data=d.no_data)
                    for d in template.point_format.extra_dimensions
                ]
            std = set(header.point_format.standard_dimension_names)
            known = std | {e.name for e in extra} | _CONVERTIBLE
            for name, arr in cloud.attrs.items():
                if name in known:
                    continue
                base = np.uint8 if arr.dtype == np.bool_ else arr.dtype
                dtype = np.dtype(base) if arr.ndim == 1 else np.dtype((base, arr.shape[1:]))
                extra.append(laspy.ExtraBytesParams(name=name, type=dtype))
            if extra:
                header.add_extra_dims(extra)
        header.generating_software = f"hdmap {__version__}"[:32]
        if self._system_identifier is not None:
            header.system_identifier = self._system_identifier[:32]
        elif template is None:
            header.system_identifier = "hdmap"
        if self._scales is not None:
            header.scales = self._scales
        elif template is None:
            header.scales = np.array([0.001, 0.001, 0.001])
        if self._offsets is not None:
            header.offsets = self._offsets
        elif template is None:
            mins = cloud.xyz.min(axis=0) if len(cloud) else np.zeros(3)
            header.offsets = np.floor(mins / 1000.0) * 1000.0
        if self._creation_date is not None:
            header.creation_date = self._creation_date
        elif template is None or template.creation_date is None:
            t = cloud.attrs.get("gps_time")
            standard = header.global_encoding.gps_time_type == laspy.header.GpsTimeType.STANDARD
            header.creation_date = _gps_date(t.min()) if (t is not None and len(t) and standard) else _GPS_EPOCH.date()
        crs = self._crs if self._crs is not None else cloud.crs
        if crs is not None:
            try:
                header.add_crs(crs)
            except Exception as exc:
                raise CRSError(
                    f"{self.path}: cannot store CRS {crs_label(crs)} in a LAS {header.version} point-format {fmt} "
                    f"header ({exc}); write point format 6 or later (WKT)"
                ) from None
        return header

    # writing --------------------------------------------------------------
    def write(self, cloud: PointCloud) -> None:
        """Append *cloud*'s points. All chunks must have the same attributes."""
        if self._ctx is None:
            raise RuntimeError("use LasWriter as a context manager: with LasWriter(path) as w: w.write(cloud)")
        if self._header is None:
            self._header = self._build_header(cloud)
            self._names = sorted(cloud.attrs)
            self._writer = laspy.open(
                self._tmp, mode="w", header=self._header, do_compress=self._compress,
                laz_backend=_LAZ_BACKEND if self._compress else None,
            )
        elif sorted(cloud.attrs) != self._names:
            raise ValueError(f"{self.path}: chunk attributes {sorted(cloud.attrs)} differ from the first chunk's {self._names}")
        if len(cloud) == 0:
            return
        if self._compress and self._header.point_format.id in (9, 10) and "scanner_channel" in cloud.attrs \
                and np.any(cloud.attrs["scanner_channel"] != cloud.attrs["scanner_channel"][0]):
            # lazrs 0.8 does not round-trip wave-packet fields when the scanner channel changes
            # between points (found by hdmap's tests); refuse rather than lose data
            raise FileFormatError(
                f"{self.path}: LAZ compression of point format {self._header.point_format.id} with several scanner "
                "channels does not round-trip the wave-packet fields (lazrs); write .las instead"
            )
        record = _cloud_to_record(cloud, self._header, self.path)
        self._writer.write_points(record)
        self.point_count += len(cloud)


_CONVERTIBLE = {"scan_angle_rank", "scan_angle"}


@functools.lru_cache(maxsize=16)
def _sub_fields(point_format_id: int) -> dict:
    """name -> (composed field, mask, lowest bit) for the bit fields of a point format."""
    from laspy.point import dims

    out = {}
    for name, (composed, sub) in dims.get_sub_fields_dict(point_format_id).items():
        mask = int(sub.mask)
        lsb = (mask & -mask).bit_length() - 1
        out[name] = (composed, mask, lsb)
    return out


def _set_field(record, fmt_id: int, name: str, values, path: Path) -> None:
    """Write one dimension into a zeroed record: bit fields packed with numpy, the rest directly."""
    sub = _sub_fields(fmt_id)
    arr = record.array
    if name in sub:
        composed, mask, lsb = sub[name]
        values = np.asarray(values)
        top = mask >> lsb
        if values.size and (values.min() < 0 or values.max() > top):
            raise ValueError(f"{path}: attribute {name!r} holds values outside 0..{top}, which point format {fmt_id} "
                             "cannot store")
        dtype = arr.dtype[composed]
        arr[composed] |= (values.astype(dtype) << dtype.type(lsb)) & dtype.type(mask)
        return
    if name in arr.dtype.names and record.point_format.dimension_by_name(name).is_standard:
        arr[name] = values
        return
    record[name] = values  # extra bytes (possibly scaled): laspy converts


def _cloud_to_record(cloud: PointCloud, header: laspy.LasHeader, path: Path):
    n = len(cloud)
    record = laspy.ScaleAwarePointRecord.zeros(n, header=header)
    fmt = record.point_format.id
    scales = np.asarray(header.scales)
    offsets = np.asarray(header.offsets)
    from .kernels.las import scaled_ints

    if not scaled_ints(cloud.xyz, offsets, scales, *(record.array[dim] for dim in _COORD_DIMS)):
        raise InvalidCoordinatesError(
            f"{path}: coordinates do not fit the LAS integer range with scale {scales.tolist()} and offset "
            f"{offsets.tolist()}; pass offsets near the data or a coarser scale"
        )
    names = set(record.point_format.dimension_names)
    for name, arr in cloud.attrs.items():
        if name in names:
            target = name
            values = arr
        elif name == "scan_angle_rank" and "scan_angle" in names:  # degrees -> 0.006 degree units
            target, values = "scan_angle", np.round(arr.astype(np.float64) / 0.006).astype(np.int16)
        elif name == "scan_angle" and "scan_angle_rank" in names:
            target, values = "scan_angle_rank", np.clip(np.round(arr * 0.006), -90, 90).astype(np.int8)
        else:
            continue
        try:
            _set_field(record, fmt, target, values, path)
        except OverflowError as exc:
            raise ValueError(f"{path}: attribute {name!r} does not fit point format {fmt}: {exc}") from None
    return record


def write(path, cloud: PointCloud, **options) -> Path:
    """Write *cloud* to a LAS/LAZ file atomically; options as for :class:`LasWriter`.

    A cloud with no points is refused (:class:`~hdmap.errors.EmptyInputError`).
    """
    if len(cloud) == 0:
        raise EmptyInputError(f"{path}: refusing to write a file with no points")
    with LasWriter(path, **options) as writer:
        writer.write(cloud)
    return Path(path)
