"""``hdmap export`` and :func:`hdmap.export.export`: formats, option checks, errors that name the input."""

from __future__ import annotations

import pytest

from hdmap import LaneMap
from hdmap.cli import main
from hdmap.export import export, load_result

from .conftest import truth_map


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("result")
    m = truth_map("urban")
    m.to_geojson(d)
    m.to_gpkg(d / "map.gpkg")
    return d, m


def test_load_result_reads_geojson_dir_and_gpkg(result_dir, tmp_path):
    d, m = result_dir
    assert load_result(d) == m
    assert load_result(d / "map.gpkg") == m
    only_gpkg = tmp_path / "only"
    only_gpkg.mkdir()
    (only_gpkg / "map.gpkg").write_bytes((d / "map.gpkg").read_bytes())
    assert load_result(only_gpkg) == m


def test_load_result_names_a_directory_without_a_map(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}.*hdmap extract"):
        load_result(tmp_path)


@pytest.mark.parametrize("fmt,name", [("gpkg", "out.gpkg"), ("geojson", "outdir")])
def test_cli_export_own_formats_round_trip(result_dir, tmp_path, fmt, name, capsys):
    d, m = result_dir
    out = tmp_path / name
    assert main(["-q", "export", str(d), "--format", fmt, "-o", str(out)]) == 0
    assert load_result(out) == m
    assert str(out) in capsys.readouterr().out


def test_cli_export_format_from_suffix(result_dir, tmp_path):
    d, m = result_dir
    assert main(["-q", "export", str(d), "-o", str(tmp_path / "m.gpkg")]) == 0
    assert LaneMap.from_gpkg(tmp_path / "m.gpkg") == m


def test_cli_export_refuses_unknown_suffix_and_misplaced_options(result_dir, tmp_path, capsys):
    d, _ = result_dir
    assert main(["-q", "export", str(d), "-o", str(tmp_path / "m.xyz")]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["-q", "export", str(d), "--format", "gpkg", "--autoware", "-o", str(tmp_path / "m.gpkg")]) == 2
    err = capsys.readouterr().err
    assert "--autoware" in err and "gpkg" in err
    assert not (tmp_path / "m.gpkg").exists()
    assert main(["-q", "export", str(d), "--format", "lanelet2", "--origin", "48.2", "-o",
                 str(tmp_path / "m.osm")]) == 2
    assert "LAT,LON" in capsys.readouterr().err
    assert not (tmp_path / "m.osm").exists()


def test_export_unknown_format_is_named(result_dir, tmp_path):
    d, m = result_dir
    with pytest.raises(ValueError, match="'kml'.*lanelet2"):
        export(m, "kml", tmp_path / "m.kml")


def test_cli_export_lanelet2_with_origin_and_sidecar(result_dir, tmp_path):
    import json

    d, m = result_dir
    out = tmp_path / "map.osm"
    assert main(["-q", "export", str(d), "-o", str(out), "--origin", "48.25,11.62", "--location", "urban"]) == 0
    sidecar = json.loads((tmp_path / "map.osm.origin.json").read_text())
    assert sidecar["origin"] == {"lat": 48.25, "lon": 11.62}
    back = load_result(out)  # the Lanelet2 reader: every lane comes back, possibly cut into parts "<id>#<k>"
    assert {ln.id.split("#")[0] for ln in back.lanes if ln.kind == "lane"} == {ln.id for ln in m.lanes}


def test_cli_export_opendrive_versions(result_dir, tmp_path):
    d, m = result_dir
    for version in ("1.8", "1.6"):
        out = tmp_path / f"map{version}.xodr"
        assert main(["-q", "export", str(d), "-o", str(out), "--opendrive-version", version,
                     "--tolerance", "0.005"]) == 0
        text = out.read_text()
        assert f'revMinor="{version[-1]}"' in text
        back = load_result(out)
        assert len(back.lanes) >= len(m.lanes)


def test_cli_export_bad_origin_and_malformed_input_are_named(result_dir, tmp_path, capsys):
    d, _ = result_dir
    assert main(["-q", "export", str(d), "-o", str(tmp_path / "m.osm"), "--origin", "95,11"]) == 2
    assert "--origin" in capsys.readouterr().err
    assert not (tmp_path / "m.osm").exists()
    import re
    from pathlib import Path

    bad = tmp_path / "bad.xodr"
    good = (Path(__file__).parent / "data" / "opendrive" / "curves_elevation.xodr").read_text()
    bad.write_text(re.sub(r'length="[0-9.e+-]+"', 'length="x"', good, count=1))
    assert main(["-q", "export", str(bad), "-o", str(tmp_path / "b.osm")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "malformed OpenDRIVE" in err
    assert not (tmp_path / "b.osm").exists()


def test_export_refuses_to_georeference_a_local_map(tmp_path, capsys):
    from pathlib import Path

    local = Path(__file__).parent / "data" / "opendrive" / "fabriksgatan.xodr"  # no geoReference
    assert main(["-q", "export", str(local), "-o", str(tmp_path / "f.osm")]) == 2
    err = capsys.readouterr().err
    assert "fabriksgatan.xodr" in err and "geoReference" in err
    assert not (tmp_path / "f.osm").exists()
    assert main(["-q", "export", str(local), "-o", str(tmp_path / "f.gpkg")]) == 0
