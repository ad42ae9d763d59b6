"""The demo's end-to-end path on a short street (the full demo runs in `make demo`)."""

from __future__ import annotations

import json

from hdmap.demo import run_demo


def test_demo_short(tmp_path):
    lines = []
    out = run_demo(tmp_path / "demo", echo=lines.append, length=150, rate=40_000)
    text = "\n".join(lines)
    assert "simulated" in text and "classified" in text and "road_marking" in text
    assert (out / "survey" / "preview.png").stat().st_size > 10_000
    assert sorted(p.name for p in (out / "classified").glob("*.laz")) == ["drive_0.laz", "drive_1.laz"]
    assert "extracted" in text and "compl.20" in text and "lanelet2:" in text and "opendrive:" in text
    for name in ("boundaries.geojson", "lanes.geojson", "map.gpkg", "map.osm", "map.xodr"):
        assert (out / "map" / name).stat().st_size > 1000, name
    metrics = json.loads((out / "map-metrics.json").read_text())
    assert set(metrics) >= {"boundaries", "curbs", "markings", "lanes"}  # accuracy: test_vectorize, at real density
    from hdmap.export import load_result

    m = load_result(out / "map")
    assert m.lines and len(load_result(out / "map" / "map.xodr").lanes) >= len(m.lanes)
    metrics = json.loads((out / "classification-metrics.json").read_text())
    assert metrics["points"]["ground_or_road"]["f1"] > 0.97  # sparse (40 k pulses/s) but still right
