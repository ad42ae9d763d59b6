"""Campaign files: parsing, defaults, path resolution, errors and the content hash."""

from __future__ import annotations

import json
import textwrap

import pytest

from hdmap.errors import ConfigError, InputFileNotFoundError
from hdmap.municipalities import BUNDLED_ATTRIBUTION
from hdmap.pipelines.campaign import FORMATS, Campaign, campaign_hash, load_campaign

FULL = """\
# a full campaign
[campaign]
name = "b13-2026"
crs = "EPSG:25832"

[[drives]]
name = "pass0"
laz = ["raw/pass0_*.laz", "extra/a.laz"]
trajectory = "pass0.txt"
crs = "EPSG:31468"

[[drives]]
name = "pass1"
laz = "raw/pass1_*.laz"

[tiles]
size = 50
buffer = 4.5
vector_buffer = 30.0

[classify.ground]
cell = 0.5
[classify.curbs]
min_height = 0.05
[extract.boundaries]
max_gap = 20.0

[municipalities]
file = "munis.geojson"
attribution = "Grenzen: test"

[outputs]
formats = ["laz", "lanelet2"]
municipalities = false
data_licence = "dl-de/by-2-0"

[truth]
dir = "truth"
"""

MUNIS = {
    "type": "FeatureCollection",
    "features": [{
        "type": "Feature",
        "properties": {"name": "Testdorf", "ags": "09999999", "license": "test"},
        "geometry": {"type": "Polygon", "coordinates": [[[11.5, 48.2], [11.6, 48.2], [11.6, 48.3], [11.5, 48.2]]]},
    }],
}


def _touch(path, size=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    return path


@pytest.fixture
def camp_dir(tmp_path):
    """A campaign directory with the files FULL names."""
    for name in ("pass0_10.laz", "pass0_2.laz", "pass0_1.laz", "pass1_a.laz"):
        _touch(tmp_path / "raw" / name, 10)
    _touch(tmp_path / "extra" / "a.laz", 5)
    (tmp_path / "pass0.txt").write_text("0 0 0 0\n")
    (tmp_path / "truth").mkdir()
    (tmp_path / "munis.geojson").write_text(json.dumps(MUNIS))
    return tmp_path


def _write(d, text, name="campaign.toml"):
    p = d / name
    p.write_text(textwrap.dedent(text))
    return p


MINIMAL = """\
[campaign]
name = "m"
[[drives]]
name = "p"
laz = "raw/pass1_a.laz"
"""


def test_full_file_round_trip(camp_dir):
    c = load_campaign(_write(camp_dir, FULL))
    assert isinstance(c, Campaign)
    assert c.path == (camp_dir / "campaign.toml").resolve() and c.path.is_absolute()
    assert c.name == "b13-2026" and c.crs.to_epsg() == 25832
    d0, d1 = c.drives
    raw = (camp_dir / "raw").resolve()
    # sorted per pattern (plain string sort), patterns in the order given
    assert d0.laz == (raw / "pass0_1.laz", raw / "pass0_10.laz", raw / "pass0_2.laz",
                      (camp_dir / "extra" / "a.laz").resolve())
    assert d0.name == "pass0" and d0.trajectory == (camp_dir / "pass0.txt").resolve()
    assert d0.crs.to_epsg() == 31468
    assert d1.laz == (raw / "pass1_a.laz",) and d1.trajectory is None and d1.crs is None
    assert (c.tile_size, c.buffer, c.vector_buffer) == (50.0, 4.5, 30.0)
    assert isinstance(c.tile_size, float)
    assert c.classify_params == {"ground": {"cell": 0.5}, "curbs": {"min_height": 0.05}}
    assert c.extract_params == {"boundaries": {"max_gap": 20.0}}
    assert c.municipalities_file == (camp_dir / "munis.geojson").resolve()
    assert c.attribution == "Grenzen: test"
    assert c.formats == ("lanelet2", "laz")  # canonical order
    assert c.per_municipality is False and c.data_licence == "dl-de/by-2-0"
    assert c.truth_dir == (camp_dir / "truth").resolve()
    assert len(c.hash) == 64 and c.hash == campaign_hash(camp_dir / "campaign.toml")
    d = json.loads(json.dumps(c.to_dict()))
    assert d["drives"][0]["laz"][0] == str(raw / "pass0_1.laz") and d["crs"] == "EPSG:25832"
    assert d["outputs"]["formats"] == ["lanelet2", "laz"] and d["hash"] == c.hash
    hash(c)  # usable in sets despite the dict fields


def test_defaults(camp_dir):
    c = load_campaign(_write(camp_dir, MINIMAL))
    assert c.crs.to_epsg() == 25832
    assert (c.tile_size, c.buffer, c.vector_buffer) == (100.0, 16.0, 35.0)
    assert c.classify_params == {} and c.extract_params == {}
    assert c.municipalities_file is None and c.attribution == BUNDLED_ATTRIBUTION
    assert c.formats == FORMATS == ("lanelet2", "opendrive", "gpkg", "laz")
    assert c.per_municipality is True and c.data_licence == "" and c.truth_dir is None


def test_municipality_file_without_attribution_defaults_to_empty(camp_dir):
    c = load_campaign(_write(camp_dir, MINIMAL + '[municipalities]\nfile = "munis.geojson"\n'))
    assert c.attribution == ""


def test_glob_duplicates_within_a_drive_are_dropped(camp_dir):
    text = MINIMAL.replace('laz = "raw/pass1_a.laz"', 'laz = ["raw/pass1_a.laz", "raw/pass1_*.laz"]')
    c = load_campaign(_write(camp_dir, text))
    assert len(c.drives[0].laz) == 1


def test_glob_characters_in_the_campaign_directory(tmp_path):
    d = tmp_path / "odd[1]"
    _touch(d / "raw" / "a.laz")
    c = load_campaign(_write(d, MINIMAL.replace("raw/pass1_a.laz", "raw/*.laz")))
    assert c.drives[0].laz == ((d / "raw" / "a.laz").resolve(),)


def test_simulated_campaign_loads(tmp_path):
    from hdmap.sim import simulate

    out = tmp_path / "sim"
    result = simulate(out, preset_name="urban", length=40, passes=2, seed=1, rate=20000)
    c = load_campaign(out / "campaign.toml")
    assert [d.name for d in c.drives] == ["pass0", "pass1"]
    assert [d.laz[0] for d in c.drives] == [p.resolve() for p in map(type(out), result.drives)]
    assert all(d.trajectory is not None and d.trajectory.is_file() for d in c.drives)
    assert all(d.crs.to_epsg() == 25832 for d in c.drives)
    assert (c.tile_size, c.buffer, c.vector_buffer) == (100.0, 16.0, 35.0)
    assert c.truth_dir == (out / "truth").resolve()


BAD = [
    # (replace old -> new in FULL, or append, expected substrings of the message)
    ("unknown top-level", ("[truth]", "[truths]"), ["truths: unknown key; the top level has:", "campaign, classify"]),
    ("unknown nested", ("size = 50", "sizee = 50"),
     ["tiles.sizee: unknown key; [tiles] has: buffer, size, vector_buffer"]),
    ("unknown drive key", ('trajectory = "pass0.txt"', 'trajectori = "pass0.txt"'), ["drives[0].trajectori: unknown key; a [[drives]] table has: crs, laz, name, trajectory"]),
    ("missing laz file", ('"extra/a.laz"', '"extra/b.laz"'), ["drives[0].laz: 'extra/b.laz' matches no file in"]),
    ("glob no match", ('"raw/pass1_*.laz"', '"raw/pass9*.laz"'),
     ["drives[1].laz: 'raw/pass9*.laz' matches no file in", "check the path or glob"]),
    ("missing trajectory", ('"pass0.txt"', '"nope.txt"'), ["drives[0].trajectory: 'nope.txt' does not exist"]),
    ("duplicate drive", ('name = "pass1"', 'name = "pass0"'), ["drives[1].name: 'pass0' is also the name of drives[0]"]),
    ("file in two drives", ('"raw/pass1_*.laz"', '"raw/pass*_1.laz"'), ["drives[1].laz:", "also a file of drives[0]"]),
    ("bad crs", ('crs = "EPSG:25832"', 'crs = "EPSG:99999"'),
     ["campaign.crs: 'EPSG:99999' is not a CRS pyproj knows"]),
    ("bad drive crs", ('crs = "EPSG:31468"', 'crs = "nonsense"'), ["drives[0].crs: 'nonsense' is not a CRS"]),
    ("geographic project crs", ('crs = "EPSG:25832"', 'crs = "EPSG:4326"'),
     ["campaign.crs: 'EPSG:4326' is geographic", "projected CRS in metres"]),
    ("tile size 0", ("size = 50", "size = 0"), ["tiles.size: must be a tile edge > 0 m, got 0"]),
    ("tile size negative", ("size = 50", "size = -3.5"), ["tiles.size: must be a tile edge > 0 m, got -3.5"]),
    ("tile size tiny", ("size = 50", "size = 2"), ["tiles.size: must be a tile edge in m of at least 5, got 2"]),
    ("tile size string", ("size = 50", 'size = "50"'), ["tiles.size: expected a number", "'50' (string)"]),
    ("tile size bool", ("size = 50", "size = true"), ["tiles.size: expected a number", "True (boolean)"]),
    ("tile size nan", ("size = 50", "size = nan"), ["tiles.size: must be a finite number"]),
    ("buffer negative", ("buffer = 4.5", "buffer = -1"), ["tiles.buffer: must be a buffer in m between 0 and 100, got -1"]),
    ("vector buffer large", ("vector_buffer = 30.0", "vector_buffer = 500.0"), ["tiles.vector_buffer:", "got 500.0"]),
    ("unknown stage", ("[classify.ground]", "[classify.grund]"), ["classify.grund: unknown stage; stages:"]),
    ("unknown parameter", ("cell = 0.5", "cel = 0.5"), ["classify.ground.cel: unknown parameter; ground has:"]),
    ("parameter out of range", ("cell = 0.5", "cell = 5"), ["classify.ground.cell: must be between 0.05 and 2.0, got 5"]),
    ("parameter wrong type", ("max_gap = 20.0", 'max_gap = "far"'), ["extract.boundaries.max_gap: expected a number"]),
    ("parameter nan", ("cell = 0.5", "cell = nan"), ["classify.ground.cell: must be a finite number"]),
    ("unknown format", ('formats = ["laz", "lanelet2"]', 'formats = ["laz", "shp"]'),
     ["outputs.formats: unknown format 'shp'; formats are: lanelet2, opendrive, gpkg, laz"]),
    ("no formats", ('formats = ["laz", "lanelet2"]', "formats = []"), ["outputs.formats: empty"]),
    ("per-municipality not bool", ("municipalities = false", 'municipalities = "no"'),
     ["outputs.municipalities: expected true or false"]),
    ("missing truth dir", ('dir = "truth"', 'dir = "truth2"'), ["truth.dir: 'truth2' does not exist"]),
    ("missing municipality file", ('file = "munis.geojson"', 'file = "m.geojson"'),
     ["municipalities.file: 'm.geojson' does not exist"]),
    ("empty name", ('name = "b13-2026"', 'name = "  "'), ["campaign.name: must not be empty"]),
    ("name not a string", ('name = "b13-2026"', "name = 13"), ["campaign.name: expected a string, got 13 (integer)"]),
    ("single drives table", ("[[drives]]\nname = \"pass1\"", "[drivez]\nname = \"pass1\""), ["drivez: unknown key"]),
    ("bad syntax", ("size = 50", "size = = 50"), ["not valid TOML", "line 17"]),
    ("duplicate key", ("size = 50", "size = 50\nsize = 60"), ["not valid TOML"]),
]


@pytest.mark.parametrize("old_new, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_campaigns(camp_dir, old_new, expected):
    old, new = old_new
    assert FULL.count(old) == 1, old
    path = _write(camp_dir, FULL.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    msg = str(info.value)
    assert msg.startswith(f"{path.resolve()}: "), msg
    for part in expected:
        assert part in msg, msg


@pytest.mark.parametrize("text, expected", [
    ('[campaign]\nname = "x"\n', "drives: no drives; add at least one [[drives]]"),
    ('[campaign]\nname = "x"\n[drives]\nname = "p"\nlaz = "a.laz"\n', "drives: is a single table [drives]"),
    ('[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n', "campaign: missing"),
    ('[campaign]\ncrs = "EPSG:25832"\n[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n', "campaign.name: missing"),
    ('[campaign]\nname = "x"\n[[drives]]\nname = "p"\n', "drives[0].laz: missing"),
    ('[campaign]\nname = "x"\n[[drives]]\nname = "p"\nlaz = []\n', "drives[0].laz: expected a path or glob"),
    ('[campaign]\nname = "x"\n[[drives]]\nname = "p"\nlaz = "raw"\n', "drives[0].laz: 'raw' is a directory"),
    ('[campaign]\nname = "x"\ncrs = "EPSG:4978"\n[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n',
     "campaign.crs: 'EPSG:4978' is not projected"),
    ('[campaign]\nname = "x"\n[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n[classify]\nground = 3\n',
     "classify.ground: expected a table"),
    ('[campaign]\nname = "x"\n[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n[extract.curbs]\nnope = 1\n',
     "extract.curbs.nope: unknown parameter"),
    ('tiles = 5\n[campaign]\nname = "x"\n[[drives]]\nname = "p"\nlaz = "raw/pass1_a.laz"\n',
     "tiles: expected a table [tiles], got 5 (integer)"),
])
def test_more_bad_campaigns(camp_dir, text, expected):
    path = _write(camp_dir, text)
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert str(info.value).startswith(f"{path.resolve()}: ") and expected in str(info.value), str(info.value)


def test_bad_municipality_file(camp_dir):
    (camp_dir / "munis.geojson").write_text("{not json")
    path = _write(camp_dir, FULL)
    with pytest.raises(ConfigError, match=r"municipalities\.file: .*not valid GeoJSON"):
        load_campaign(path)


def test_missing_campaign_file(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="no such campaign file"):
        load_campaign(tmp_path / "nope.toml")


def test_directory_instead_of_file_hints_at_campaign_toml(camp_dir):
    _write(camp_dir, MINIMAL)
    with pytest.raises(ConfigError, match="did you mean .*campaign.toml"):
        load_campaign(camp_dir)


def test_not_utf8(camp_dir):
    (camp_dir / "c.toml").write_bytes(b'[campaign]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_campaign(camp_dir / "c.toml")


def test_hash_ignores_formatting_and_sees_values_and_sizes(camp_dir):
    base = campaign_hash(_write(camp_dir, FULL))
    # comments, blank lines, key order, quoting style and inline tables change nothing
    reformatted = FULL.replace("# a full campaign\n", "").replace('name = "b13-2026"', "name  =  'b13-2026'   # the name")
    reformatted = reformatted.replace("size = 50\nbuffer = 4.5\n", "\n\nbuffer = 4.5\nsize = 50\n")
    reformatted = reformatted.replace("[classify.ground]\ncell = 0.5\n", "")
    reformatted = reformatted.replace("[classify.curbs]", "[classify]\nground = { cell = 0.5 }\n[classify.curbs]")
    assert reformatted != FULL
    assert campaign_hash(_write(camp_dir, reformatted)) == base
    # any value change does
    assert campaign_hash(_write(camp_dir, FULL.replace("buffer = 4.5", "buffer = 4.6"))) != base
    assert campaign_hash(_write(camp_dir, FULL.replace('data_licence = "dl-de/by-2-0"', 'data_licence = "x"'))) != base
    _write(camp_dir, FULL)
    assert campaign_hash(camp_dir / "campaign.toml") == base
    # a LAZ file growing does
    _touch(camp_dir / "raw" / "pass0_2.laz", 11)
    grown = campaign_hash(camp_dir / "campaign.toml")
    assert grown != base
    # so does a new file matched by a glob
    _touch(camp_dir / "raw" / "pass0_3.laz", 1)
    assert campaign_hash(camp_dir / "campaign.toml") not in (base, grown)
