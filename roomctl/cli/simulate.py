"""`roomctl simulate`: play a preset through on the simulated room, printed."""

from __future__ import annotations

import argparse

from roomctl.preset import PresetError, load_preset
from roomctl.simulate import run_simulation


def _simulate(args: argparse.Namespace) -> int:
    try:
        preset = load_preset(args.file)
    except PresetError as err:
        print(err)
        return 1
    run_simulation(preset, speed=None if args.instant else args.speed)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser("simulate", help="play a preset through on the simulated room")
    sim.add_argument("file")
    speed = sim.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=float, default=60.0, help="N x real time (default 60)")
    speed.add_argument("--instant", action="store_true", help="as fast as possible")
    sim.set_defaults(func=_simulate)
