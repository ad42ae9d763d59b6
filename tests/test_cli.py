"""The command line, run in-process through main() and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hdmap import __version__
from hdmap.cli import main

from .conftest import make_las


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"hdmap {__version__}"


def test_python_dash_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hdmap", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"hdmap {__version__}"


def test_info_text(capsys, utm_laz):
    path, las = utm_laz
    code, out, err = run(capsys, "info", str(path))
    assert code == 0, err
    assert "20,000" in out
    assert "EPSG:25832" in out
    assert f"{float(np.min(las.x)):.3f}" in out and f"{float(np.max(las.y)):.3f}" in out
    assert "point format  6 (LAS 1.4, LAZ)" in out
    assert "pts/m²" in out


def test_info_json(capsys, utm_laz, tmp_path):
    path, las = utm_laz
    other = tmp_path / "second.las"
    make_las(other, n=100, point_format=0, version="1.2")
    code, out, _ = run(capsys, "info", "--json", str(path), str(other))
    assert code == 0
    data = json.loads(out)
    assert [d["points"] for d in data] == [20_000, 100]
    first = data[0]
    assert first["epsg"] == 25832 and first["crs"] == "EPSG:25832"
    np.testing.assert_allclose(first["bounds"]["min"], [np.min(las.x), np.min(las.y), np.min(las.z)])
    np.testing.assert_allclose(first["bounds"]["max"], [np.max(las.x), np.max(las.y), np.max(las.z)])
    assert first["time_span"] == pytest.approx([float(np.min(las.gps_time)), float(np.max(las.gps_time))])
    # density: the random points cover 400 m x 400 m almost fully at 1 m cells -> about n / occupied
    occupied = len(np.unique(np.floor(np.column_stack([las.x, las.y])).astype(np.int64), axis=0))
    assert first["occupied_area_m2"] == pytest.approx(occupied, rel=0.02)
    assert first["density_per_m2"] == pytest.approx(20_000 / first["occupied_area_m2"])
    assert data[1]["time_span"] is None  # point format 0 has no GPS time
    assert data[1]["point_format"] == 0


def test_info_truncated_is_one_line_naming_the_file(capsys, utm_laz, tmp_path):
    path, _ = utm_laz
    bad = tmp_path / "broken.laz"
    bad.write_bytes(path.read_bytes()[:60_000])
    code, out, err = run(capsys, "info", str(bad))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hdmap: error: ") and "broken.laz" in lines[0] and "Traceback" not in err


def test_info_truncated_as_a_process(utm_laz, tmp_path):
    path, _ = utm_laz
    bad = tmp_path / "broken.laz"
    bad.write_bytes(path.read_bytes()[:60_000])
    proc = subprocess.run([sys.executable, "-m", "hdmap", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "broken.laz" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("content,needle", [(None, "no such point-cloud file"), (b"GARBAGE" * 100, "not a LAS/LAZ file")])
def test_info_bad_files(capsys, tmp_path, content, needle):
    path = tmp_path / "x.laz"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "info", str(path))
    assert code == 2 and needle in err and "x.laz" in err


def test_no_command_prints_help(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "usage: hdmap" in err
