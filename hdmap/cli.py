"""The ``hdmap`` command line (also ``python -m hdmap``).

A thin layer over the library: it parses options, sets up logging and progress
bars, and turns every :class:`hdmap.errors.HdmapError` into a one-line message
and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import HdmapError

__all__ = ["main", "build_parser"]

logger = logging.getLogger("hdmap")

EXIT_USAGE = 2
EXIT_ERROR = 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
def _cmd_info(args) -> int:
    from ._progress import progress_bar
    from .info import format_summary, summarize

    results = []
    for name in args.files:
        with progress_bar(desc=f"reading {Path(name).name}", unit="pts", unit_scale=True,
                          enabled=not args.json and not args.quiet) as bar:
            summary = summarize(name, cell=args.cell, progress=bar.update)
        results.append(summary)
        if not args.json:
            print(format_summary(summary), flush=True)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="summarise LAS/LAZ files",
        description="Print point count, point format, bounds, CRS (EPSG code when known), GPS time span and mean "
        "density over the occupied area of each file. Reads every point once, in chunks.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="LAS or LAZ files")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.add_argument("--cell", type=float, default=1.0, metavar="M",
                   help="cell size of the occupancy grid behind the density (default: %(default)s m)")
    p.set_defaults(func=_cmd_info)


def _cmd_demo(args) -> int:
    from hdmap.pipelines.demo import run_demo  # the CLI is the one place the library reaches into pipelines

    from ._progress import progress_bar

    with progress_bar(desc="demo survey", unit="pts", unit_scale=True, enabled=not args.quiet) as bar:
        run_demo(args.out, progress=bar.update, workers=args.workers, show_progress=not args.quiet)
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on built-in data",
                       description="Make a survey drive from built-in data, process it and summarise the result.")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes of the pipeline (default: one per core)")
    p.set_defaults(func=_cmd_demo)


def _cmd_simulate(args) -> int:
    from ._progress import progress_bar
    from .sim import simulate

    with progress_bar(desc="simulating", unit="pts", unit_scale=True, enabled=not args.quiet) as bar:
        result = simulate(
            args.out, preset_name=args.preset, road_file=args.road, length=args.length, passes=args.passes,
            seed=args.seed, rate=args.rate, speed=args.speed, scanners=args.scanners, multibeam=args.multibeam,
            preview=args.preview, progress=bar.update,
        )
    print(f"simulated {result.total_points:,} points in {len(result.drives)} drive(s) "
          f"({result.total_points / max(result.seconds, 1e-9) / 1e6:.2f} M points/s) -> {Path(args.out)}")
    if result.preview:
        print(f"preview: {result.preview}")
    return 0


def _add_simulate(sub) -> None:
    from .sim.presets import PRESETS

    p = sub.add_parser(
        "simulate",
        help="simulate survey drives with ground truth",
        description="Ray-cast a mobile-mapping survey through a street built from a preset or a road description "
        "(TOML) and write OUT/drive_*.laz, trajectories (ASCII and SBET), OUT/truth/ (per-point classes, "
        "lane boundaries, curbs, markings, lanes) and OUT/campaign.toml.",
    )
    p.add_argument("out", metavar="OUT", help="output directory")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=sorted(PRESETS), default=None,
                     help="built-in street (default: urban)")
    src.add_argument("--road", metavar="FILE", help="road description TOML instead of a preset")
    p.add_argument("--length", type=float, default=None, metavar="M", help="road length for presets (default 1000 m)")
    p.add_argument("--passes", type=int, default=2, help="number of drives, alternating direction (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed: scene layout, motion, noise (default 0)")
    p.add_argument("--rate", type=float, default=None, metavar="PTS_S",
                   help="pulses per second per profile scanner (default 1,000,000)")
    p.add_argument("--speed", type=float, default=None, metavar="M_S",
                   help="survey speed in m/s (default: the preset's, e.g. 40 km/h in town)")
    p.add_argument("--scanners", type=int, choices=(1, 2), default=2, help="profile scanners on the vehicle")
    p.add_argument("--multibeam", action="store_true", help="add a spinning 32-beam lidar")
    p.add_argument("--preview", metavar="PNG", help="write a top-down intensity image with the truth drawn over it")
    p.set_defaults(func=_cmd_simulate)


def _read_trajectories(paths, crs):
    from .trajectory import Trajectory

    return [Trajectory.read(p, crs=crs) for p in paths] if paths else None


def _parse_params(items, path):
    """``--param stage.name=value`` options and an optional TOML file -> nested dict."""
    import tomllib

    from .errors import ConfigError, ParameterError

    params: dict = {}
    if path:
        try:
            with open(path, "rb") as fh:
                params = tomllib.load(fh)
        except FileNotFoundError:
            from .errors import InputFileNotFoundError

            raise InputFileNotFoundError(path, "parameter file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); see docs for the parameter file format") from None
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ParameterError(f"--param {item!r}: expected STAGE.NAME=VALUE, e.g. --param ground.cell=0.2")
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"--param {item!r}: {value!r} is not a number") from None
        stage, name = key.split(".", 1)
        params.setdefault(stage, {})[name] = int(number) if number.is_integer() and "." not in value else number
    return params


def _cmd_classify(args) -> int:
    from ._progress import progress_bar
    from .classes import Class
    from .errors import ParameterError
    from .io import read_header
    from .stream import classify_file

    inputs = [Path(p) for p in args.input]
    out = Path(args.output)
    if len(inputs) == 1 and not out.is_dir():
        outputs = [out]
    else:
        if out.exists() and not out.is_dir():
            raise ParameterError(f"-o {out}: with several inputs the output must be a directory")
        names = [p.name for p in inputs]
        if len(set(names)) != len(names):
            raise ParameterError("several inputs share a file name; their outputs in one directory would collide")
        out.mkdir(parents=True, exist_ok=True)
        outputs = [out / p.name for p in inputs]
    trajectories = _read_trajectories(args.trajectory, args.crs)
    params = _parse_params(args.param, args.params)
    total = sum(read_header(p).point_count for p in inputs)
    with progress_bar(total=total, desc="classifying", unit="pts", unit_scale=True, enabled=not args.quiet) as bar:
        result = classify_file(inputs, outputs, trajectories, params, tile=args.tile, halo=args.halo,
                               max_tile_points=args.max_tile_points, crs=args.crs, workdir=args.workdir,
                               progress=bar.update)
    names = {int(c): c.name.lower() for c in Class}
    shares = ", ".join(f"{names.get(c, c)} {k / max(result.points, 1):.1%}" for c, k in sorted(result.counts.items()))
    where = outputs[0] if len(outputs) == 1 else f"{len(outputs)} files in {out}"
    print(f"classified {result.points:,} points in {result.tiles} tile(s) -> {where} ({shares})")
    return 0


def _add_classify(sub) -> None:
    from .stream import DEFAULT_HALO, DEFAULT_MAX_TILE_POINTS, DEFAULT_TILE

    p = sub.add_parser(
        "classify",
        help="classify the points of a survey drive",
        description="Label noise (7, 18), ground (2), road surface (11), curbs (67) and road markings (64) and write "
        "the points with every input attribute kept. Streams: the file is processed in square tiles with a halo, "
        "so memory follows --max-tile-points, not the file. Without --trajectory the road is seeded from the data and "
        "intensity is only compared locally (logged).",
    )
    p.add_argument("input", metavar="IN", nargs="+",
                   help="LAS/LAZ file(s); several drives of one street are classified together")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output LAS/LAZ file, or a directory (required for several inputs; names are kept)")
    p.add_argument("--trajectory", action="append", metavar="FILE",
                   help="vehicle trajectory (ASCII or SBET); repeat for several drives in one file")
    p.add_argument("--crs", metavar="CRS", help="CRS of input and trajectory when their files carry none")
    p.add_argument("--param", action="append", metavar="STAGE.NAME=VALUE",
                   help="override a stage parameter, e.g. --param markings.ratio=2.0 (repeatable)")
    p.add_argument("--params", metavar="TOML", help="parameter file: [ground] cell = 0.25 ...")
    p.add_argument("--tile", type=float, default=DEFAULT_TILE, metavar="M",
                   help="largest block edge (default %(default)s m); dense data get smaller blocks")
    p.add_argument("--max-tile-points", type=int, default=DEFAULT_MAX_TILE_POINTS, metavar="N",
                   help="most points classified at once, halo included: bounds memory (default %(default)s, "
                   "about 2-3 GB)")
    p.add_argument("--halo", type=float, default=DEFAULT_HALO, metavar="M",
                   help="context around each tile (default %(default)s m)")
    p.add_argument("--workdir", metavar="DIR", help="directory for temporary tile files (default: beside OUT)")
    p.set_defaults(func=_cmd_classify)


def _cmd_extract(args) -> int:
    from ._progress import progress_bar
    from .io import read_header
    from .vectorize import extract_files, map_summary

    trajectories = _read_trajectories(args.trajectory, args.crs)
    params = _parse_params(args.param, args.params)
    total = sum(read_header(p).point_count for p in args.input)
    with progress_bar(total=total, desc="reading", unit="pts", unit_scale=True, enabled=not args.quiet) as bar:
        m = extract_files(args.input, args.output, trajectories, params, crs=args.crs, workdir=args.workdir,
                          progress=bar.update)
    print(f"extracted {map_summary(m)} -> {args.output}")
    return 0


def _add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="extract the lane-level map (boundaries, curbs, markings, lanes)",
        description="Vectorise classified drives into lane boundaries, curbs and road borders, marking objects and "
        "lane sections; writes OUTDIR/{boundaries,curbs,markings,lanes}.geojson and OUTDIR/map.gpkg (EPSG of the "
        "input). Inputs without road classes are classified first. Give all drives of a street at once; each "
        "trajectory gives the driving direction of the lanes it passes.",
    )
    p.add_argument("input", metavar="IN", nargs="+", help="LAS/LAZ file(s), classified or not")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output directory")
    p.add_argument("--trajectory", action="append", metavar="FILE",
                   help="vehicle trajectory (ASCII or SBET); repeat for several drives")
    p.add_argument("--crs", metavar="CRS", help="CRS of input and trajectory when their files carry none")
    p.add_argument("--param", action="append", metavar="STAGE.NAME=VALUE",
                   help="override a parameter, e.g. --param boundaries.max_gap=25 (repeatable; classification "
                   "stages too)")
    p.add_argument("--params", metavar="TOML", help="parameter file: [boundaries] max_gap = 25 ...")
    p.add_argument("--workdir", metavar="DIR", help="directory for temporary files when classifying first")
    p.set_defaults(func=_cmd_extract)


def _cmd_evaluate(args) -> int:
    from .errors import ParameterError
    from .evaluate import evaluate_points, format_metrics, write_metrics

    if not args.classified and not args.result:
        raise ParameterError("evaluate: give --classified LAZ... (point classes) and/or --result OUTDIR (the map)")
    result: dict = {"truth": str(args.truth)}
    text = []
    if args.classified:
        metrics = evaluate_points(args.truth, args.classified)
        result.update(classified=[str(p) for p in args.classified], points=metrics)
        text.append(format_metrics(metrics))
    if args.result:
        from .evaluate_map import evaluate_map, format_map_metrics

        sim = Path(args.truth)
        trajs = sorted(sim.glob("trajectory_*.txt"))
        m = evaluate_map(sim / "truth", args.result, trajectories=trajs)
        result["result"] = str(args.result)
        result.update(m)
        text.append(format_map_metrics(m))
    if args.json:
        write_metrics(args.json, result)
    print("\n\n".join(text))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure a classification against simulator truth",
        description="Measure results against the truth of a simulation directory. --classified: match points (by "
        "drive, scanner channel, GPS time and return number) and report per-class precision, recall, F1 and the "
        "confusion matrix. --result: compare an extracted map with the truth lines, curbs, markings and lanes "
        "inside the surveyed area (buffer method; see hdmap.evaluate_map).",
    )
    p.add_argument("--truth", required=True, metavar="SIM_DIR", help="directory written by hdmap simulate")
    p.add_argument("--classified", nargs="+", metavar="LAZ", help="classified file(s)")
    p.add_argument("--result", metavar="OUTDIR", help="directory written by hdmap extract")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON (keys points.<class>.f1, ...)")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_export(args) -> int:
    from .errors import ParameterError
    from .export import FORMATS, export, load_result

    fmt = args.format
    if fmt is None:
        by_suffix = {suffix: name for name, suffix in FORMATS.items() if suffix}
        fmt = by_suffix.get(Path(args.output).suffix.lower())
        if fmt is None:
            raise ParameterError(f"export: cannot tell the format from {args.output!r}; give --format "
                                 f"{'|'.join(FORMATS)}")
    options: dict = {}
    given = {"--origin": args.origin, "--autoware": args.autoware or None, "--location": args.location,
             "--opendrive-version": args.opendrive_version, "--tolerance": args.tolerance}
    allowed = {"lanelet2": {"--origin", "--autoware", "--location"},
               "opendrive": {"--opendrive-version", "--tolerance"}}
    wrong = [opt for opt, value in given.items() if value is not None and opt not in allowed.get(fmt, ())]
    if wrong:
        raise ParameterError(f"export: {', '.join(wrong)} does not apply to --format {fmt}")
    if args.origin is not None:
        try:
            lat, lon = (float(v) for v in args.origin.split(","))
        except ValueError:
            raise ParameterError(f"export: --origin {args.origin!r} is not LAT,LON in degrees, "
                                 "e.g. --origin 48.2486,11.6245") from None
        options["origin"] = (lat, lon)
    if args.autoware:
        options["autoware"] = True
    if args.location is not None:
        options["location"] = args.location
    if args.opendrive_version is not None:
        options["version"] = args.opendrive_version
    if args.tolerance is not None:
        options["tolerance"] = args.tolerance
    m = load_result(args.result)
    out = export(m, fmt, args.output, **options)
    print(f"wrote {fmt} map of {len(m.lanes)} lane sections and {len(m.boundaries)} boundaries -> {out}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write an extracted map as Lanelet2, OpenDRIVE, GeoPackage or GeoJSON",
        description="Convert the map in RESULT (a directory written by hdmap extract, its map.gpkg, or a Lanelet2 "
        "or OpenDRIVE file) for other "
        "tools: Lanelet2 OSM (WGS84 nodes; the projection origin is written into the file and into "
        "FILE.origin.json), ASAM OpenDRIVE 1.8 or 1.6 (geoReference EPSG:25832 plus a local offset), GeoPackage, "
        "or a GeoJSON directory. Files are written atomically (a GeoJSON directory file by file). See the README for the conventions.",
    )
    p.add_argument("result", metavar="RESULT", help="directory written by hdmap extract, or a map file "
                   "(.gpkg, Lanelet2 .osm, OpenDRIVE .xodr) to convert")
    p.add_argument("-f", "--format", choices=("lanelet2", "opendrive", "gpkg", "geojson"),
                   help="output format (default: from the suffix of FILE: .osm, .xodr, .gpkg)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (a directory for geojson)")
    p.add_argument("--origin", metavar="LAT,LON", help="lanelet2: projection origin (default: near the data)")
    p.add_argument("--autoware", action="store_true", help="lanelet2: Autoware flavour (local_x/local_y tags)")
    p.add_argument("--location", choices=("urban", "nonurban"), help="lanelet2: location tag of the lanelets "
                   "(default urban)")
    p.add_argument("--opendrive-version", choices=("1.8", "1.6"), help="opendrive: standard version (default 1.8)")
    p.add_argument("--tolerance", type=float, metavar="M", help="opendrive: largest deviation of the fitted "
                   "reference line and width polynomials from the map (default 0.01 m)")
    p.set_defaults(func=_cmd_export)


def _cmd_run(args) -> int:
    from hdmap.pipelines import run  # the CLI is the one place the library reaches into pipelines

    result = run(args.campaign, args.out, workers=args.workers, dask_scheduler=args.dask_scheduler,
                 resume=args.resume, progress=not args.quiet, echo=print, keep_work=args.keep_work)
    print(f"done: {result.points:,} points, {result.tiles} tiles in {sum(result.seconds.values()):.0f} s -> {result.out}")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run", help="process a survey campaign: tiles, map, deliveries per municipality, QA report",
        description="Process every drive of a campaign file (see hdmap.pipelines.campaign for the format; "
        "hdmap simulate writes one): classified LAZ tiles, the stitched lane map, a delivery per municipality "
        "and for the whole field (Lanelet2, OpenDRIVE, GeoPackage, manifest), and a QA report. A run killed at "
        "any point continues with --resume.")
    p.add_argument("campaign", metavar="CAMPAIGN.toml", help="the campaign file")
    p.add_argument("--out", metavar="DIR", help="run directory (default: 'out' beside the campaign file); must be "
                   "new or empty unless --resume")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per core)")
    p.add_argument("--dask-scheduler", metavar="ADDR", help="run the tiles on a Dask cluster, e.g. "
                   "tcp://host:8786 (workers need hdmap and the run directory on a shared file system)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped "
                   "(refused if the campaign file changed)")
    p.add_argument("--keep-work", action="store_true", help="keep the spilled points and per-tile intermediates "
                   "in DIR/work after the run (removed by default: they take several times the input's size)")
    p.set_defaults(func=_cmd_run)


_COMMANDS = [_add_info, _add_simulate, _add_classify, _add_extract, _add_export, _add_evaluate, _add_run, _add_demo]


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdmap",
        description="Lane-level HD maps from mobile-mapping point clouds.",
    )
    parser.add_argument("--version", action="version", version=f"hdmap {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("hdmap")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except HdmapError as exc:
        print(f"hdmap: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # permissions, disk full, ...: about a file the user named
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"hdmap: error: {where}{_one_line(exc.strerror or exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("hdmap: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
