"""The `roomctl` command: serve, presets validate/show, simulate, hue pair/lights."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from roomctl import units
from roomctl.preset import Advance, PresetError, load_preset, preset_files


def _validate(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for raw in args.paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(preset_files(p))
        elif p.exists():
            files.append(p)
        else:
            print(f"{raw}: no such file or folder")
            return 1
    if not files:
        print("no preset files found (*.yaml, *.yml)")
        return 1
    failed = 0
    for f in files:
        try:
            preset = load_preset(f)
        except PresetError as err:
            failed += 1
            for problem in err.problems:
                print(problem)
        else:
            print(f"{f.name}: ok — {preset.name}, {len(preset.phases)} phases, "
                  f"{units.format_duration(preset.planned_total_s())} planned")
    if failed:
        print(f"{failed} of {len(files)} preset files have problems")
    return 1 if failed else 0


def _show(args: argparse.Namespace) -> int:
    try:
        preset = load_preset(args.file)
    except PresetError as err:
        print(err)
        return 1
    print(f"{preset.name}\n{preset.description.strip()}\n" if preset.description else preset.name)
    head = f"{'start':>8}  {'phase':<16}{'kind':<13}{'advance':<9}{'length':>8}  {'lights':<24}{'music':<24}cues"
    print(head)
    print("-" * len(head))
    t = 0.0
    for p in preset.phases:
        length = p.planned_s
        lights = "—"
        if p.lights:
            colour = f"{p.lights.color_temp}K" if p.lights.color_temp else (p.lights.color or "")
            lights = f"{p.lights.brightness:g}% {colour} /{units.format_duration(p.lights.transition)}"
        music = "—"
        if p.music:
            music = f"{p.music.playlist or 'silence'} {p.music.volume:g}%"
        length_s = units.format_duration(length) if length else "?"
        if p.advance is Advance.MANUAL:
            length_s = f"~{length_s}"
        print(f"{units.format_clock(t):>8}  {p.id:<16}{p.kind:<13}{p.advance:<9}{length_s:>8}  "
              f"{lights:<24}{music:<24}{len(p.cues) or ''}")
        for c in p.cues:
            when = (f"+{units.format_duration(c.at)}" if c.at is not None
                    else f"dose+{units.format_duration(c.since_dose or 0)}")
            print(f"{'':>10}{'':<16}  reminder {when}: {c.text}")
        t += length or 0.0
    print(f"\ntotal planned: {units.format_clock(t)}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from roomctl.simulate import run_simulation

    try:
        preset = load_preset(args.file)
    except PresetError as err:
        print(err)
        return 1
    run_simulation(preset, speed=None if args.instant else args.speed)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from roomctl.serve import serve

    return serve(config_path=args.config, host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roomctl", description="Room controller for "
                                     "psychedelic- and ketamine-assisted therapy.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service and the tablet page")
    serve.add_argument("--config", help="roomctl.toml (default: the demo room)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.set_defaults(func=_serve)

    presets = sub.add_parser("presets", help="check and read preset files")
    psub = presets.add_subparsers(dest="presets_command", required=True)
    v = psub.add_parser("validate", help="check preset files; list every problem")
    v.add_argument("paths", nargs="+", help="files or folders")
    v.set_defaults(func=_validate)
    s = psub.add_parser("show", help="a table of a preset's phases")
    s.add_argument("file")
    s.set_defaults(func=_show)

    sim = sub.add_parser("simulate", help="play a preset through on the simulated room")
    sim.add_argument("file")
    speed = sim.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=60.0, help="N x real time (default 60)")
    speed.add_argument("--instant", action="store_true", help="as fast as possible")
    sim.set_defaults(func=_simulate)

    try:
        from roomctl import hue_cli
    except ImportError:
        pass
    else:
        hue_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
