"""LAS/LAZ reading, writing, CRS and reprojection."""

from __future__ import annotations

import itertools

import laspy
import numpy as np
import pyproj
import pytest

import hdmap
from hdmap import errors
from hdmap.io import LasWriter, iter_chunks, read, read_copc, read_header, write

from .conftest import GK4, UTM32, make_las

FORMATS_BY_VERSION = [("1.2", f) for f in range(0, 4)] + [("1.3", f) for f in range(0, 6)] + [("1.4", f) for f in range(0, 11)]


def assert_same_points(cloud, las):
    assert len(cloud) == len(las.points)
    np.testing.assert_array_equal(cloud.xyz[:, 0], np.asarray(las.x))
    np.testing.assert_array_equal(cloud.xyz[:, 1], np.asarray(las.y))
    np.testing.assert_array_equal(cloud.xyz[:, 2], np.asarray(las.z))
    for name in las.point_format.dimension_names:
        if name in ("X", "Y", "Z"):
            continue
        np.testing.assert_array_equal(cloud.attrs[name], np.asarray(las[name]), err_msg=name)
        assert cloud.attrs[name].dtype == np.asarray(las[name]).dtype, name


@pytest.mark.parametrize("version,fmt", FORMATS_BY_VERSION)
@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_read_every_version_and_point_format(tmp_path, version, fmt, suffix):
    path = tmp_path / f"v{version}_f{fmt}{suffix}"
    las = make_las(path, n=777, point_format=fmt, version=version)
    cloud = read(path)
    assert_same_points(cloud, las)
    assert cloud.crs.to_epsg() == 25832
    assert cloud.layout.point_format == fmt
    assert cloud.layout.version == version


@pytest.mark.parametrize("fmt", [1, 3, 6, 7, 8])
@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_round_trip_keeps_every_attribute_and_extra_bytes(tmp_path, fmt, suffix):
    extra = [
        laspy.ExtraBytesParams("reflectance_db", "f4", description="reflectance"),
        laspy.ExtraBytesParams("deviation", "u2"),
        laspy.ExtraBytesParams("scaled_range", "i4", scales=np.array([0.01]), offsets=np.array([5.0])),
        laspy.ExtraBytesParams("normal", "3f8"),
    ]
    src = tmp_path / f"src{suffix}"
    las = make_las(src, n=3000, point_format=fmt, version="1.4", extra=extra)
    out = tmp_path / f"out{suffix}"
    write(out, read(src))
    back = laspy.read(str(out))
    assert back.point_format.id == fmt
    assert back.header.parse_crs().to_epsg() == 25832
    np.testing.assert_array_equal(back.header.scales, las.header.scales)
    for name in las.point_format.dimension_names:
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(las[name]), err_msg=name)
    eb = {d.name: d for d in back.point_format.extra_dimensions}
    assert eb["reflectance_db"].description == "reflectance"
    assert eb["scaled_range"].scales[0] == pytest.approx(0.01)


def test_round_trip_is_byte_deterministic(tmp_path, utm_laz):
    path, _ = utm_laz
    cloud = read(path)
    a, b = tmp_path / "a.laz", tmp_path / "b.laz"
    write(a, cloud)
    write(b, cloud)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("chunk", [1, 999, 4096, 20_000, 10**7])
def test_chunks_concatenate_to_whole(utm_laz, chunk):
    path, _ = utm_laz
    whole = read(path)
    if chunk == 1:  # the smallest chunk: check the first 50 only
        gen = iter_chunks(path, chunk_size=1)
        parts = list(itertools.islice(gen, 50))
        gen.close()
        assert all(len(p) == 1 for p in parts)
        np.testing.assert_array_equal(np.vstack([p.xyz for p in parts]), whole.xyz[:50])
        return
    parts = list(iter_chunks(path, chunk_size=chunk))
    assert all(len(p) <= chunk for p in parts)
    joined = hdmap.PointCloud.concatenate(parts)
    np.testing.assert_array_equal(joined.xyz, whole.xyz)
    for name in whole.attrs:
        np.testing.assert_array_equal(joined.attrs[name], whole.attrs[name])


def test_streaming_writer_equals_whole_write(tmp_path, utm_laz):
    path, _ = utm_laz
    with LasWriter(tmp_path / "streamed.laz") as w:
        for chunk in iter_chunks(path, chunk_size=3333):
            w.write(chunk)
    write(tmp_path / "whole.laz", read(path))
    a, b = laspy.read(str(tmp_path / "streamed.laz")), laspy.read(str(tmp_path / "whole.laz"))
    assert a.header.point_count == b.header.point_count == 20_000
    np.testing.assert_array_equal(np.asarray(a.points.array), np.asarray(b.points.array))
    np.testing.assert_allclose(a.header.mins, b.header.mins)


def test_high_classes_upgrade_legacy_point_format(tmp_path):
    src = tmp_path / "legacy.las"
    las = make_las(src, n=500, point_format=1, version="1.2")
    cloud = read(src)
    classes = np.full(len(cloud), hdmap.Class.ROAD_MARKING, np.uint8)
    classes[::2] = hdmap.Class.CURB
    out = tmp_path / "classified.laz"
    write(out, cloud.with_attrs(classification=classes))
    back = laspy.read(str(out))
    assert back.point_format.id == 6 and str(back.header.version) == "1.4"
    np.testing.assert_array_equal(np.asarray(back.classification), classes)
    np.testing.assert_array_equal(np.asarray(back.gps_time), np.asarray(las.gps_time))
    np.testing.assert_array_equal(np.asarray(back.intensity), np.asarray(las.intensity))
    # scan angle: degrees (rank) -> 0.006 degree units
    np.testing.assert_allclose(np.asarray(back.scan_angle) * 0.006, np.asarray(las.scan_angle_rank), atol=0.003)
    assert back.header.parse_crs().to_epsg() == 25832


def test_new_cloud_gets_format_6_and_survey_date(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 100, (100, 3)) + [692000, 5343800, 480]
    t = 1.4e9 - 1e9 + np.arange(100.0)  # adjusted standard GPS time in 2024
    cloud = hdmap.PointCloud(xyz, {"gps_time": t, "intensity": np.arange(100, dtype=np.uint16),
                                   "range_m": rng.uniform(1, 50, 100).astype(np.float32)}, crs=UTM32)
    write(tmp_path / "new.laz", cloud)
    back = laspy.read(str(tmp_path / "new.laz"))
    assert back.point_format.id == 6
    assert str(back.header.creation_date) == "2024-05-17"  # GPS day 16203 after 1980-01-06
    assert "range_m" in back.point_format.extra_dimension_names
    np.testing.assert_allclose(np.column_stack([back.x, back.y, back.z]), xyz, atol=0.0005)


def test_crs_from_geotiff_keys(tmp_path):
    path = tmp_path / "gk.las"
    make_las(path, n=100, point_format=1, version="1.2", crs=GK4, origin=(4468000.0, 5343000.0, 480.0))
    header = read_header(path)
    assert header.vlrs.get("GeoKeyDirectoryVlr")
    assert read(path).crs.to_epsg() == 31468


def test_explicit_crs_for_file_without_one(tmp_path):
    path = tmp_path / "nocrs.laz"
    make_las(path, n=100, crs=None)
    with pytest.raises(errors.CRSError, match=r"nocrs\.laz.*no CRS.*crs="):
        read(path)
    assert read(path, crs="EPSG:25832").crs.to_epsg() == 25832
    assert read(path, require_crs=False).crs is None


def test_unknown_epsg_is_a_clear_error(utm_laz):
    path, _ = utm_laz
    with pytest.raises(errors.CRSError, match=r"unknown CRS 'EPSG:99999'.*EPSG:25832"):
        read(path, to_crs="EPSG:99999")


def test_reprojection_matches_pyproj(tmp_path):
    path = tmp_path / "gk.laz"
    make_las(path, n=5000, point_format=6, crs=GK4, origin=(4468000.0, 5343000.0, 480.0))
    src = read(path)
    got = read(path, to_crs=25832)
    tr = pyproj.Transformer.from_crs(GK4, UTM32, always_xy=True)
    x, y, z = tr.transform(src.x, src.y, src.z)
    np.testing.assert_allclose(got.xyz, np.column_stack([x, y, z]), rtol=0, atol=1e-6)
    assert got.crs.to_epsg() == 25832
    chunked = np.vstack([c.xyz for c in iter_chunks(path, chunk_size=1234, to_crs="EPSG:25832")])
    np.testing.assert_array_equal(chunked, got.xyz)
    # plausibility: the transformation is a real shift of the Gauss-Krueger false easting
    assert 680_000 < got.x.mean() < 700_000


def test_read_copc_by_bounds(tmp_path):
    from .copc_writer import write_copc

    rng = np.random.default_rng(3)
    n = 40_000
    xyz = rng.uniform([692000, 5343800, 480], [692200, 5344000, 500], (n, 3))
    path = tmp_path / "tile.copc.laz"
    write_copc(path, xyz, intensity=rng.integers(0, 65535, n).astype(np.uint16), crs=UTM32)
    box = (692050.0, 5343850.0, 692100.0, 5343925.0)
    got = read_copc(path, box)
    inside = ((xyz[:, 0] >= box[0]) & (xyz[:, 0] <= box[2]) & (xyz[:, 1] >= box[1]) & (xyz[:, 1] <= box[3]))
    assert len(got) == int(inside.sum())
    expected = np.round(xyz[inside] * 1000) / 1000
    np.testing.assert_allclose(np.sort(got.x), np.sort(expected[:, 0]), atol=1e-6)
    assert got.crs.to_epsg() == 25832
    assert len(read_copc(path)) == n
    with pytest.raises(errors.FileFormatError, match="not a COPC"):
        make_las(tmp_path / "plain.laz", n=10)
        read_copc(tmp_path / "plain.laz", box)


# --- bad input --------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(errors.InputFileNotFoundError, match=r"nope\.laz: no such point-cloud file"):
        read(tmp_path / "nope.laz")
    with pytest.raises(FileNotFoundError):  # also the built-in
        read(tmp_path / "nope.laz")


def test_not_a_las_file(tmp_path):
    path = tmp_path / "notes.laz"
    path.write_text("this is not a point cloud\n" * 50)
    with pytest.raises(errors.FileFormatError, match=r"notes\.laz: not a LAS/LAZ file"):
        read(path)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.05])
def test_truncated_laz(utm_laz, tmp_path, keep):
    path, _ = utm_laz
    data = path.read_bytes()
    bad = tmp_path / "cut.laz"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(errors.CorruptFileError, match=r"cut\.laz.*truncated"):
        read(bad)
    with pytest.raises(errors.CorruptFileError, match=r"cut\.laz"):
        list(iter_chunks(bad, chunk_size=1000))


def test_corrupt_laz_data(utm_laz, tmp_path):
    path, _ = utm_laz
    data = bytearray(path.read_bytes())
    header = read_header(path)
    start = header.offset_to_point_data + 8
    rng = np.random.default_rng(0)
    data[start + 100 : start + 5000] = rng.integers(0, 256, 4900, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbled.laz"
    bad.write_bytes(bytes(data))
    try:
        cloud = read(bad)
    except errors.CorruptFileError as exc:
        assert "garbled.laz" in str(exc)
    else:  # an arithmetic decoder may decode garbage without noticing: then the values must differ
        assert not np.array_equal(cloud.xyz, read(path).xyz)


def test_truncated_las(utm_laz, tmp_path):
    path, _ = utm_laz
    src = tmp_path / "plain.las"
    write(src, read(path))
    data = src.read_bytes()
    bad = tmp_path / "cut.las"
    bad.write_bytes(data[:-1000])
    with pytest.raises(errors.CorruptFileError, match=r"cut\.las: truncated"):
        read(bad)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.laz"
    make_las(path, n=0)
    with pytest.raises(errors.EmptyInputError, match=r"empty\.laz.*no points"):
        read(path)
    assert len(read(path, allow_empty=True)) == 0
    with pytest.raises(errors.EmptyInputError):
        list(iter_chunks(path))


def test_nan_scale_in_header(utm_laz, tmp_path):
    path, _ = utm_laz
    data = bytearray(path.read_bytes())
    data[131:139] = np.array([np.nan]).tobytes()  # x scale factor
    bad = tmp_path / "nanscale.laz"
    bad.write_bytes(bytes(data))
    with pytest.raises(errors.InvalidCoordinatesError, match=r"nanscale\.laz.*NaN"):
        read(bad)


def test_nan_coordinates_rejected():
    xyz = np.zeros((5, 3))
    xyz[3, 1] = np.inf
    with pytest.raises(errors.InvalidCoordinatesError, match=r"1 of 5 points.*index 3"):
        hdmap.PointCloud(xyz)


def test_failed_write_leaves_nothing(tmp_path, utm_laz):
    path, _ = utm_laz
    out = tmp_path / "out.laz"
    with pytest.raises(RuntimeError, match="boom"):
        with LasWriter(out) as w:
            for i, chunk in enumerate(iter_chunks(path, chunk_size=5000)):
                w.write(chunk)
                if i == 2:
                    raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [path] or not out.exists()
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    assert not out.exists()


def test_failed_write_keeps_previous_file(tmp_path, utm_laz):
    path, _ = utm_laz
    out = tmp_path / "out.laz"
    write(out, read(path))
    before = out.read_bytes()
    cloud = read(path)
    far = cloud.copy()
    far.xyz[0, 0] += 1e7  # does not fit int32 at 1 mm with the source offset
    with pytest.raises(errors.InvalidCoordinatesError, match="integer range"):
        write(out, far)
    assert out.read_bytes() == before


def test_writing_nothing_is_refused(tmp_path):
    with pytest.raises(errors.EmptyInputError):
        with LasWriter(tmp_path / "x.laz"):
            pass
    assert not (tmp_path / "x.laz").exists()
