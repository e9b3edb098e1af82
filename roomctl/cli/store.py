"""`roomctl store check | repair | backup`: look after the session record.

    roomctl store check [--config roomctl.toml | --file sessions.db]
    roomctl store backup FILE [--config ... | --file ...]     (safe while roomctl runs)
    roomctl store repair NEW-FILE [--config ... | --file ...]

None of them changes the store's own files (`roomctl.salvage`). Exit status: 0 all well (a
repair: its new file written), 1 damage found or the command failed, 2 the store or the
config cannot be found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from roomctl.config import ConfigError, demo_config, load_config
from roomctl.salvage import Findings, backup, check, repair
from roomctl.store import StoreError

STORE_NAME = "sessions.db"  # `roomctl serve` keeps the record here, in the data directory


def store_path(args: argparse.Namespace) -> Path:
    if args.file:
        return Path(args.file)
    config = load_config(args.config) if args.config else demo_config()
    return Path(config.data_dir) / STORE_NAME


def _show(found: Findings) -> int:
    for line in found.lines():
        print(line)
    return 0 if found.ok else 1


def _run(args: argparse.Namespace) -> int:
    try:
        path = store_path(args)
    except ConfigError as err:
        print(f"roomctl: the config file has problems:\n{err}", file=sys.stderr)
        return 2
    if not path.exists() and not path.with_name(path.name + "-wal").exists():
        print(f"roomctl: no session store at {path}", file=sys.stderr)
        return 2
    try:
        if args.action == "check":
            return _show(check(path))
        act = backup if args.action == "backup" else repair
        found = act(path, Path(args.target))
    except StoreError as err:
        print(f"roomctl: {err}", file=sys.stderr)
        return 1
    if args.action == "backup":
        return _show(found)
    for line in found.lines()[:-1]:  # a repair is done once its new file is written, damage or not
        print(line)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("store", help="check, back up or repair the session record")
    actions = cmd.add_subparsers(dest="action", required=True)
    for name, help_text, target in (
            ("check", "say whether the record is sound and what it holds (changes nothing)", None),
            ("backup", "a consistent copy into a new file, safe while roomctl runs (use this, not cp)",
             "FILE"),
            ("repair", "save what can be read of a damaged record into a new file (the old one is "
                       "left as it is)", "NEW-FILE")):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        if target:
            sub.add_argument("target", metavar=target, help="the new file (must not exist)")
        where = sub.add_mutually_exclusive_group()
        where.add_argument("--config", help="roomctl.toml: the record in its data directory")
        where.add_argument("--file", help=f"the store file itself (default: <data dir>/{STORE_NAME})")
        sub.set_defaults(func=_run)
