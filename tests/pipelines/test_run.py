"""The batch pipeline end to end on a small simulated campaign (two passes over an urban street).

One uninterrupted local run is the reference; a Dask run, a run killed with
SIGKILL and resumed, and runs with other tile sizes are compared with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hdmap.errors import ConfigError
from hdmap.pipelines import load_campaign, run

pytestmark = pytest.mark.slow

SPLIT_N = 5_338_232.0  # the two made-up municipalities meet across the street here (urban preset, seed 5)


def _municipalities(path: Path) -> Path:
    """Two municipalities splitting the scene along N = SPLIT_N (EPSG:25832 coordinates)."""
    x0, x1 = 690_000.0, 693_000.0
    feats = []
    for name, ags, y0, y1 in (("Südheim", "09999001", 5_336_000.0, SPLIT_N), ("Nordheim", "09999002", SPLIT_N,
                                                                                5_340_000.0)):
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        feats.append({"type": "Feature", "properties": {"name": name, "ags": ags, "license": "test polygons"},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25832"}},
                                "features": feats}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    from hdmap.sim import simulate

    sim = tmp_path_factory.mktemp("campaign")
    simulate(sim, preset_name="urban", length=60, passes=2, seed=5, rate=60_000)
    _municipalities(sim / "split.geojson")
    text = (sim / "campaign.toml").read_text(encoding="utf-8")
    text = text.replace("size = 100.0", "size = 25.0")
    text = text.replace("[truth]", '[municipalities]\nfile = "split.geojson"\n\n[truth]')
    (sim / "campaign.toml").write_text(text, encoding="utf-8")
    return sim / "campaign.toml"


@pytest.fixture(scope="module")
def reference(campaign, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    return run(campaign, out, workers=2, progress=False)


def _deliverables(out: Path) -> dict:
    """sha256 of every file under deliveries/, vectors/ and tiles/."""
    files = {}
    for sub in ("deliveries", "vectors", "tiles"):
        for p in sorted((out / sub).rglob("*")):
            if p.is_file():
                files[str(p.relative_to(out))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def test_outputs(reference, campaign):
    out = reference.out
    c = load_campaign(campaign)
    assert (out / "run.log").read_text().count("classify") >= 1
    assert sorted(p.name for p in (out / "deliveries").iterdir()) == ["09999001_Suedheim", "09999002_Nordheim",
                                                                      "tempus"]
    for d in (out / "deliveries").iterdir():
        man = json.loads((d / "manifest.json").read_text())
        assert man["campaign"]["hash"] == c.hash and man["crs"]["epsg"] == 25832
        assert set(man["files"]) == {"map.osm", "map.osm.origin.json", "map.xodr", "map.gpkg"}
        for name, info in man["files"].items():
            assert hashlib.sha256((d / name).read_bytes()).hexdigest() == info["sha256"], name
        assert "GeoBasis" not in man["licence"]["attribution"] and "test polygons" in man["licence"]["attribution"]
        assert [s["name"] for s in man["source_drives"]] == ["pass0", "pass1"]
    metrics = json.loads((out / "qa" / "metrics.json").read_text())
    acc = metrics["accuracy"]
    # the tiled run measures like the whole-scene extraction does (test_vectorize holds the targets)
    assert acc["points"]["road_marking"]["f1"] > 0.85 and acc["points"]["ground_or_road"]["f1"] > 0.97
    assert acc["map"]["boundaries"]["correctness_0.20"] > 0.9 and acc["map"]["curbs"]["correctness_0.20"] > 0.9
    assert (out / "qa" / "report.html").stat().st_size > 50_000


def test_tiles_hold_each_point_once(reference, campaign):
    from hdmap.evaluate import _keys
    from hdmap.io import iter_chunks, read_header

    c = load_campaign(campaign)
    src = np.concatenate([_keys(ch) for d in c.drives for p in d.laz for ch in iter_chunks(p)])
    got, classes = [], []
    for p in sorted((reference.out / "tiles").glob("*.laz")):
        assert read_header(p).point_format.id >= 6
        for ch in iter_chunks(p):
            got.append(_keys(ch))
            classes.append(ch.attrs["classification"])
            x0, y0 = (float(v[1:]) for v in p.stem.split("_"))
            assert (ch.xyz[:, 0] >= x0).all() and (ch.xyz[:, 0] < x0 + 25.0).all()
            assert (ch.xyz[:, 1] >= y0).all() and (ch.xyz[:, 1] < y0 + 25.0).all()
    got = np.concatenate(got)
    assert len(got) == len(src) == reference.points
    assert np.array_equal(np.sort(got, order=("src", "ch", "t", "ret")), np.sort(src, order=("src", "ch", "t", "ret")))
    assert (np.concatenate(classes) == 64).sum() > 1000


def test_border_cut_halves_join_and_load(reference, tmp_path):
    """Lines crossing N = SPLIT_N are cut there with one shared vertex; both halves load in Lanelet2 and pass
    the OpenDRIVE checks."""
    from hdmap.export import load_result
    from tests.test_export_lanelet2 import graph_of, load
    from tests.test_export_opendrive import assert_schema_valid, qc_issues

    d = reference.out / "deliveries"
    south = load_result(d / "09999001_Suedheim" / "map.gpkg")
    north = load_result(d / "09999002_Nordheim" / "map.gpkg")
    cut = 0
    for b in south.boundaries:
        if "." not in b.id:
            continue
        stem, k = b.id.rsplit(".", 1)
        other = {o.id: o for o in north.boundaries}.get(f"{stem}.{int(k) + 1}") or \
            {o.id: o for o in north.boundaries}.get(f"{stem}.{int(k) - 1}")
        assert other is not None, b.id
        ends = [b.xyz[0], b.xyz[-1]]
        shared = [e for e in ends if any(np.array_equal(e, f) for f in (other.xyz[0], other.xyz[-1]))]
        assert len(shared) == 1, b.id
        cut += 1
    assert cut >= 4  # the lane lines and curbs crossing the street there
    assert any("." in ln.id for ln in south.lanes) and any("." in ln.id for ln in north.lanes)
    for part in ("09999001_Suedheim", "09999002_Nordheim"):
        lmap, errors, _ = load(d / part / "map.osm")
        assert errors == [] and len(lmap.laneletLayer) > 0
        assert graph_of(lmap).checkValidity() == []
        assert_schema_valid(d / part / "map.xodr", "1.8")
        (tmp_path / part).mkdir()
        assert qc_issues(d / part / "map.xodr", tmp_path / part) == []


def test_tile_size_invariance(reference, campaign, tmp_path):
    """Stitched boundaries from 25 m and 200 m tiles agree within 0.05 m (completeness and correctness)."""
    from hdmap.evaluate_map import evaluate_map

    big = campaign.with_name("campaign200.toml")
    big.write_text(campaign.read_text().replace("size = 25.0", "size = 200.0"))
    res = run(big, tmp_path / "run200", workers=2, progress=False)
    assert res.tiles < reference.tiles
    m = evaluate_map(reference.out / "vectors", res.out / "vectors", buffers=(0.05,))
    assert m["boundaries"]["completeness_0.05"] >= 0.99 and m["boundaries"]["correctness_0.05"] >= 0.99, m
    assert m["boundaries"]["pattern_accuracy"] == 1.0
    # curbs and road borders too: every grid is absolute and a point on a cell edge is in the same cell
    # in both runs (benchmarks/pipeline.py measures both layers at survey density)
    assert m["curbs"]["completeness_0.05"] >= 0.99 and m["curbs"]["correctness_0.05"] >= 0.99, m


def test_dask_matches_local(reference, campaign, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        res = run(campaign, tmp_path / "dask", dask_scheduler=cl.scheduler_address, progress=False)
    assert _deliverables(res.out) == _deliverables(reference.out)
    assert "Dask cluster" in (res.out / "run.log").read_text()


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "hdmap", "-q", "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _kill_when(proc, out: Path, pattern: str, timeout=300.0):
    """SIGKILL the run (its whole process group) as soon as a file matching *pattern* exists under *out*."""
    t0 = time.monotonic()
    while not any(out.glob(pattern)):
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the run ended before {pattern} appeared: {err}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no {pattern} after {timeout} s")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def test_resume_after_sigkill_is_byte_identical(reference, campaign, tmp_path):
    out = tmp_path / "killed"
    # killed while spilling, then while classifying tiles, then while painting: each time resumed
    for pattern in ("work/spill/d0/*.bin", "work/done/classify/*", "work/done/paint/*"):
        _kill_when(_cli(campaign, "--out", out, "--workers", "2", *(["--resume"] if (out / "run.json").exists()
                                                                    else [])), out, pattern)
    done = {s: len(list((out / "work" / "done" / s).glob("*"))) for s in ("classify", "paint")}
    assert 0 < done["paint"] < reference.tiles or done["classify"] < reference.tiles  # it really was cut short
    # a kill can land between creating a temporary file and renaming it: resuming removes such leftovers
    (out / "tiles").mkdir(exist_ok=True)
    (out / "tiles" / ".E0_N0.laz.999999.part").write_bytes(b"")
    proc = _cli(campaign, "--out", out, "--workers", "2", "--resume")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert _deliverables(out) == _deliverables(reference.out)
    log = (out / "run.log").read_text()
    assert log.count("resuming") == 3
    # a finished run no longer holds the spilled points; resuming it redoes the cheap steps, same bytes
    assert not any((out / "work" / sub).exists() for sub in ("spill", "classes", "final", "histograms"))
    run(campaign, out, resume=True, workers=1, progress=False)
    assert _deliverables(out) == _deliverables(reference.out)


def test_work_folder_is_small_after_a_run(reference):
    """The intermediates (a raw copy of every point, per-tile codes and histograms) are removed at the end;
    what stays (done-markers, tile vectors, the plan) is small next to the tiles."""
    work = sum(p.stat().st_size for p in (reference.out / "work").rglob("*") if p.is_file())
    tiles = sum(p.stat().st_size for p in (reference.out / "tiles").rglob("*") if p.is_file())
    assert work < tiles, (work, tiles)


def test_resume_refuses_a_changed_campaign(reference, campaign, tmp_path):
    changed = campaign.with_name("changed.toml")
    changed.write_text(campaign.read_text().replace("vector_buffer = 35.0", "vector_buffer = 20.0"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text((reference.out / "run.json").read_text())
    with pytest.raises(ConfigError, match=r"changed\.toml: the campaign changed since the run in .* started"):
        run(changed, tmp_path / "run", resume=True, workers=1)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json"]
    with pytest.raises(ConfigError, match="holds a run of campaign .*; pass --resume"):
        run(campaign, reference.out, workers=1)


@pytest.mark.parametrize("edit, message", [
    (("[tiles]", "[tiles]\ncolour = 3"), "tiles.colour: unknown key"),
    (('laz = ["drive_1.laz"]', 'laz = ["drive_9.laz"]'), "drives[1].laz: 'drive_9.laz' matches no file"),
    (('crs = "EPSG:25832"', 'crs = "EPSG:99999"'), "campaign.crs: 'EPSG:99999'"),
    (("size = 25.0", "size = 0.0"), "tiles.size: must be a tile edge > 0 m, got 0"),
    (("size = 25.0", "size = -25.0"), "tiles.size: must be a tile edge > 0 m, got -25"),
])
def test_bad_campaign_writes_nothing(campaign, tmp_path, edit, message):
    bad = campaign.with_name(f"bad_{abs(hash(message)) % 10**6}.toml")
    bad.write_text(campaign.read_text().replace(*edit, 1))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "hdmap", "run", str(bad), "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
