"""The presets a service offers: the bundled ones (read-only) and the clinic's own folder.

A preset's id is its file name without `.yaml`. Saving writes YAML atomically into the
clinic's folder; bundled presets are never written, but can be duplicated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from roomctl.preset import Preset, PresetError, PresetProblem, load_preset, preset_files, save_preset

# Checked with fullmatch: `$` would also match before a final newline ("abc\n").
PRESET_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
MAX_CLINIC_PRESETS = 500  # the clinic's folder; far more than a clinic writes, few enough to list at once


def valid_id(preset_id: str) -> bool:
    return PRESET_ID.fullmatch(preset_id) is not None


class PresetNotFound(KeyError):
    pass


class PresetReadOnly(PermissionError):
    pass


class PresetExists(FileExistsError):
    pass


class PresetLimit(Exception):
    """The clinic's folder holds `MAX_CLINIC_PRESETS` presets already."""


@dataclass(frozen=True)
class PresetEntry:
    id: str
    source: str  # "bundled" | "clinic"
    path: Path
    preset: Preset | None  # None when the file has problems
    problems: tuple[PresetProblem, ...] = ()

    @property
    def read_only(self) -> bool:
        return self.source == "bundled"


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")
    return slug or "preset"


class PresetLibrary:
    def __init__(self, bundled: Path, clinic: Path) -> None:
        self.bundled = bundled
        self.clinic = clinic

    def _load(self, path: Path, source: str) -> PresetEntry:
        try:
            return PresetEntry(path.stem, source, path, load_preset(path))
        except PresetError as err:
            return PresetEntry(path.stem, source, path, None, tuple(err.problems))

    def entries(self) -> list[PresetEntry]:
        out: dict[str, PresetEntry] = {}
        for folder, source in ((self.bundled, "bundled"), (self.clinic, "clinic")):
            if folder.is_dir():
                for path in preset_files(folder):
                    if valid_id(path.stem) and path.stem not in out:
                        out[path.stem] = self._load(path, source)
        return sorted(out.values(), key=lambda e: (e.source != "clinic", e.id))

    def entry(self, preset_id: str) -> PresetEntry:
        if valid_id(preset_id):
            for folder, source in ((self.bundled, "bundled"), (self.clinic, "clinic")):
                for suffix in (".yaml", ".yml"):
                    path = folder / f"{preset_id}{suffix}"
                    if path.is_file():
                        return self._load(path, source)
        raise PresetNotFound(preset_id)

    def get(self, preset_id: str) -> Preset:
        entry = self.entry(preset_id)
        if entry.preset is None:
            raise PresetError(list(entry.problems))
        return entry.preset

    def save(self, preset_id: str, preset: Preset, *, create: bool) -> PresetEntry:
        if not valid_id(preset_id):
            raise ValueError(f"preset id '{preset_id}' must be lower-case letters, digits and -")
        existing = self._find(preset_id)
        if existing is not None and existing[1] == "bundled":
            raise PresetReadOnly(preset_id)
        if create and existing is not None:
            raise PresetExists(preset_id)
        if not create and existing is None:
            raise PresetNotFound(preset_id)
        if create and self.clinic.is_dir() and len(preset_files(self.clinic)) >= MAX_CLINIC_PRESETS:
            raise PresetLimit(f"the clinic's folder holds {MAX_CLINIC_PRESETS} presets, the most it takes: "
                              "delete some first")
        self.clinic.mkdir(parents=True, exist_ok=True)
        path = existing[0] if existing else self.clinic / f"{preset_id}.yaml"
        save_preset(preset, path)
        return PresetEntry(preset_id, "clinic", path, preset)

    def delete(self, preset_id: str) -> None:
        existing = self._find(preset_id)
        if existing is None:
            raise PresetNotFound(preset_id)
        if existing[1] == "bundled":
            raise PresetReadOnly(preset_id)
        existing[0].unlink()

    def free_id(self, base: str) -> str:
        base = slugify(base)[:50]
        candidate, n = base, 2
        while self._find(candidate) is not None:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def duplicate(self, preset_id: str, new_id: str | None = None) -> PresetEntry:
        preset = self.get(preset_id)
        target = new_id or self.free_id(f"{preset_id}-copy")
        copy = preset.model_copy(update={"name": f"{preset.name} (copy)"[:80]})
        return self.save(target, copy, create=True)

    def _find(self, preset_id: str) -> tuple[Path, str] | None:
        if not valid_id(preset_id):
            return None
        for folder, source in ((self.bundled, "bundled"), (self.clinic, "clinic")):
            for suffix in (".yaml", ".yml"):
                path = folder / f"{preset_id}{suffix}"
                if path.is_file():
                    return path, source
        return None
