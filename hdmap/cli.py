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
    from ._progress import progress_bar
    from .demo import run_demo

    with progress_bar(desc="demo survey", unit="pts", unit_scale=True, enabled=not args.quiet) as bar:
        run_demo(args.out, progress=bar.update)
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on built-in data",
                       description="Make a survey drive from built-in data, process it and summarise the result.")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="output directory (default: %(default)s)")
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


_COMMANDS = [_add_info, _add_simulate, _add_demo]


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
