"""`roomctl presets validate | show`: check preset files and read them as a table."""

from __future__ import annotations

import argparse
from pathlib import Path

from roomctl import units
from roomctl.config import BUNDLED_PRESETS
from roomctl.preset import Advance, PresetError, load_preset, preset_files


def _validate(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for raw in args.paths or [str(BUNDLED_PRESETS)]:
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    presets = subparsers.add_parser("presets", help="check and read preset files")
    psub = presets.add_subparsers(dest="presets_command", required=True)
    v = psub.add_parser("validate", help="check preset files; list every problem")
    v.add_argument("paths", nargs="*", help="files or folders (default: the bundled presets)")
    v.set_defaults(func=_validate)
    s = psub.add_parser("show", help="a table of a preset's phases")
    s.add_argument("file")
    s.set_defaults(func=_show)
