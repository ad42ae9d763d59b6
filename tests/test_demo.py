"""The demo's end-to-end path on a short street (the full demo runs in `make demo`)."""

from __future__ import annotations

import json

import pytest

from hdmap.pipelines.demo import run_demo

pytestmark = pytest.mark.slow


def test_demo_short(tmp_path):
    lines = []
    out = run_demo(tmp_path / "demo", echo=lines.append, length=150, rate=40_000, workers=2, show_progress=False)
    text = "\n".join(lines)
    assert "simulated" in text and "road_marking" in text and "compl.20" in text
    assert (out / "survey" / "preview.png").stat().st_size > 10_000
    run = out / "run"
    assert list((run / "tiles").glob("*.laz"))
    for name in ("boundaries.geojson", "lanes.geojson", "map.gpkg"):
        assert (run / "vectors" / name).stat().st_size > 1000, name
    for name in ("map.osm", "map.xodr", "map.gpkg", "manifest.json"):
        assert (run / "deliveries" / "tempus" / name).stat().st_size > 1000, name
    assert f"QA report: {run / 'qa' / 'report.html'}" in text
    metrics = json.loads((run / "qa" / "metrics.json").read_text())
    assert set(metrics["accuracy"]["map"]) >= {"boundaries", "curbs", "markings", "lanes"}
    assert metrics["accuracy"]["points"]["ground_or_road"]["f1"] > 0.97  # sparse (40 k pulses/s) but still right
    # 150 m from N 5,343,500 stay in Munich
    assert sorted(p.name for p in (run / "deliveries").iterdir()) == ["09162000_Muenchen", "tempus"]
