import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomctl.preset import (
    Advance,
    PhaseKind,
    Preset,
    PresetError,
    load_preset,
    parse_preset,
    parse_preset_yaml,
    preset_files,
    preset_to_yaml,
    save_preset,
)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "roomctl" / "presets").glob("*.yaml"))
BROKEN = Path(__file__).resolve().parent / "broken_presets"

# One file per mistake, and the one line each must produce: file, phase, field, message.
EXPECTED = {
    "auto-without-duration.yaml":
        "phase 'journey': duration: an auto phase needs a duration (or advance: manual)",
    "bad-duration-text.yaml":
        "phase 'journey': duration: 'half an hour' is not a duration (use e.g. '45s', '15m', '1h30m')",
    "bad-hex-color.yaml": "phase 'journey': lights.color: 'orange' is not a colour (use \"#rrggbb\")",
    "bad-kind.yaml": "phase 'journey': kind: 'trip' is not one of 'preparation', 'dosing', 'journey', "
                     "'return', 'integration' or 'custom'",
    "bad-phase-id.yaml":
        "phase 'Deep Journey': id: 'Deep Journey' must be lower-case letters, digits, - or _",
    "brightness-above-100.yaml": "phase 'journey': lights.brightness: 140 is above 100",
    "color-and-color-temp.yaml": "phase 'journey': lights: set either color or color_temp, not both",
    "color-temp-out-of-range.yaml": "phase 'journey': lights.color_temp: 1500K is below 2000",
    "cue-outside-phase.yaml": "phase 'journey': cues[1].at: 40m is outside the phase (30m long)",
    "cue-without-anchor.yaml": "phase 'journey': cues[0]: give exactly one of at, since_dose or since_last_dose",
    "duplicate-phase-id.yaml": "phases: phase id 'journey' is used twice",
    "infinite-duration.yaml":
        "phase 'journey': duration: inf is not a duration (use e.g. '45s', '15m', '1h30m')",
    "manual-with-duration.yaml":
        "phase 'integration': duration: a manual phase waits for the therapist; use planned",
    "missing-name.yaml": "name: is required",
    "negative-duration.yaml": "phase 'journey': duration: -300 must be more than 0",
    "no-phases.yaml": "phases: a preset needs at least one phase",
    "not-a-mapping.yaml": "a preset must be a mapping with name and phases",
    "planned-on-auto.yaml":
        "phase 'journey': planned: only a manual phase has a planned time; use duration",
    "since-dose-before-dose.yaml":
        "phase 'preparation': cues[0].since_dose: the phase comes before the dose",
    "since-dose-outside-phase.yaml":
        "phase 'journey': cues[0].since_dose: 50m after the dose falls outside the phase "
        "(planned from 15m to 45m after the dose)",
    "since-dose-without-dosing.yaml":
        "phase 'journey': cues[0].since_dose: the preset has no dosing phase",
    "unknown-key-typo.yaml": "phase 'journey': lights.colour_temp: unknown key (did you mean "
                             "'color_temp'?); known: brightness, color_temp, color, transition",
    "unknown-top-level-key.yaml": "author: unknown key; known: name, description, phases, monitoring",
    "volume-below-0.yaml": "phase 'journey': music.volume: -5 is below 0",
    "yaml-syntax-error.yaml": "YAML syntax error at line 8, column 7: expected ',' or '}', but got ':'",
    "zero-duration.yaml": "phase 'journey': duration: 0s must be more than 0",
}


def test_every_broken_file_has_an_expected_message() -> None:
    assert sorted(p.name for p in preset_files(BROKEN)) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_preset_yields_exactly_its_one_problem(name: str) -> None:
    with pytest.raises(PresetError) as info:
        load_preset(BROKEN / name)
    problems = info.value.problems
    assert [str(p) for p in problems] == [f"{name}: {EXPECTED[name]}"]
    assert str(info.value) == f"{name}: {EXPECTED[name]}"


def test_problem_names_file_phase_and_field_separately() -> None:
    with pytest.raises(PresetError) as info:
        load_preset(BROKEN / "brightness-above-100.yaml")
    (problem,) = info.value.problems
    assert (problem.file, problem.phase, problem.field) == (
        "brightness-above-100.yaml", "journey", "lights.brightness")
    assert problem.message == "140 is above 100"
    assert problem.as_dict()["text"] == str(problem)


def test_yaml_syntax_error_points_at_the_line() -> None:
    text = "name: x\nphases:\n  - id: a\n    kind: [journey\n"
    with pytest.raises(PresetError, match=r"^f\.yaml: YAML syntax error at line 5, column 1: "):
        parse_preset_yaml(text, "f.yaml")
    bad_indent = "name: x\n phases: []\n"
    with pytest.raises(PresetError, match=r"YAML syntax error at line 2, column 8"):
        parse_preset_yaml(bad_indent, "g.yaml")


def test_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"^missing\.yaml: cannot read: "):
        load_preset(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(PresetError, match=r"^binary\.yaml: cannot read: "):
        load_preset(binary)


SEVERAL = """\
name: Several mistakes
phases:
  - id: preparation
    kind: preparation
    advance: manual
    duration: 10m
    lights: {brightness: 101}
  - id: dosing
    kind: dosing
    duration: 15m
    music: {playlist: dosing, volume: 40, fadein: 10s}
  - id: journey
    kind: jouney
    duration: 30m
    cues:
      - {at: 45m, text: Check in}
      - {since_dose: 2h, text: Check blood pressure}
  - id: journey
    kind: return
    duration: 20m
"""


def test_several_mistakes_are_reported_at_once() -> None:
    with pytest.raises(PresetError) as info:
        parse_preset_yaml(SEVERAL, "several.yaml")
    assert sorted(str(p) for p in info.value.problems) == sorted([
        "several.yaml: phase 'preparation': lights.brightness: 101 is above 100",
        "several.yaml: phase 'preparation': duration: a manual phase waits for the therapist; "
        "use planned",
        "several.yaml: phase 'dosing': music.fadein: unknown key (did you mean 'fade_in'?); "
        "known: playlist, volume, fade_in, crossfade",
        "several.yaml: phase 'journey': kind: 'jouney' is not one of 'preparation', 'dosing', "
        "'journey', 'return', 'integration' or 'custom'",
        "several.yaml: phase 'journey': cues[0].at: 45m is outside the phase (30m long)",
        "several.yaml: phase 'journey': cues[1].since_dose: 2h after the dose falls outside the "
        "phase (planned from 15m to 45m after the dose)",
        "several.yaml: phases: phase id 'journey' is used twice",
    ])


def test_validation_via_data_not_only_yaml() -> None:
    with pytest.raises(PresetError, match=r"^api: phase 'a': lights\.brightness: -1 is below 0$"):
        parse_preset({"name": "x", "phases": [
            {"id": "a", "kind": "journey", "duration": 60, "lights": {"brightness": -1}}]}, "api")


def test_a_valid_preset_parses_with_human_units() -> None:
    preset = parse_preset_yaml(
        """
name: Units
phases:
  - id: prep
    kind: preparation
    advance: manual
    planned: 1h 5m
    lights: {brightness: 60, color_temp: 2700K, transition: 90s}
    music: {playlist: arrival, volume: 35}
    cues: [{at: 5m, text: Consent}]
  - id: dose
    kind: dosing
    duration: 1h30m
    lights: {brightness: 30, color: "#ff8a3d"}
    cues: [{since_dose: 1h, text: BP}]
""", "units.yaml")
    prep, dose = preset.phases
    assert prep.advance is Advance.MANUAL and prep.duration is None and prep.planned == 3900
    assert prep.planned_s == 3900
    assert prep.lights is not None and prep.lights.color_temp == 2700 and prep.lights.transition == 90
    assert prep.music is not None and prep.music.fade_in == 10 and prep.music.crossfade == 8
    assert prep.cues[0].at == 300
    assert dose.kind is PhaseKind.DOSING and dose.duration == 5400 and dose.planned_s == 5400
    assert dose.lights is not None and dose.lights.color == "#ff8a3d" and dose.lights.color_temp is None
    assert dose.cues[0].since_dose == 3600
    assert preset.dosing_index == 1
    assert preset.planned_total_s() == 3900 + 5400
    assert preset.playlists() == ["arrival"]
    assert preset.phase_index("dose") == 1
    with pytest.raises(KeyError):
        preset.phase_index("nope")
    assert prep.display_title == "Prep"


def test_presets_are_frozen() -> None:
    preset = load_preset(BUNDLED[0])
    with pytest.raises(ValueError, match="frozen"):
        preset.name = "changed"


# --- the bundled presets ------------------------------------------------------------------


def test_there_are_bundled_presets() -> None:
    assert len(BUNDLED) >= 4
    assert [p.name for p in preset_files(ROOT / "roomctl" / "presets")] == [p.name for p in BUNDLED]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_preset_validates_and_is_documented(path: Path) -> None:
    preset = load_preset(path)
    assert len(preset.description.strip()) > 40
    head = path.read_text(encoding="utf-8").splitlines()
    assert head[0].startswith("#")
    comment = " ".join(line.lstrip("# ") for line in head if line.startswith("#"))
    # The header says where its timings come from: a dated citation, or that it is no protocol.
    assert re.search(r"\b(19|20)\d\d\b", comment) or "Not a clinical protocol" in comment
    assert all(p.lights is not None and p.music is not None for p in preset.phases)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_preset_load_save_load(path: Path, tmp_path: Path) -> None:
    preset = load_preset(path)
    out = tmp_path / path.name
    save_preset(preset, out)
    assert load_preset(out) == preset
    assert parse_preset_yaml(preset_to_yaml(preset)) == preset
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_saved_yaml_uses_human_units() -> None:
    preset = load_preset(ROOT / "roomctl" / "presets" / "kap-sublingual.yaml")
    data = yaml.safe_load(preset_to_yaml(preset))
    dosing = data["phases"][1]
    assert dosing["duration"] == "15m"
    assert dosing["lights"]["color_temp"] == "2400K"
    assert dosing["lights"]["transition"] == "2m"
    assert "planned" not in dosing
    assert "cues" not in data["phases"][3]


# --- generated presets round trip ---------------------------------------------------------

_seconds = st.one_of(
    st.integers(min_value=1, max_value=6 * 3600).map(float),
    st.floats(min_value=0.1, max_value=20_000, allow_nan=False, allow_infinity=False),
)
# Printable text in any script. Control characters and Unicode line separators are left out:
# PyYAML writes NEL (U+0085) and U+2028/9 unescaped and reads them back as line breaks.
_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"))
_text = st.text(_chars, min_size=1, max_size=30)


@st.composite
def _lights(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"brightness": draw(st.floats(0, 100)), "transition": draw(_seconds)}
    colour = draw(st.sampled_from(["none", "ct", "color"]))
    if colour == "ct":
        out["color_temp"] = f"{draw(st.integers(2000, 6500))}K"
    elif colour == "color":
        out["color"] = "#" + "".join(draw(st.lists(st.sampled_from("0123456789abcdefABCDEF"),
                                                   min_size=6, max_size=6)))
    return out


@st.composite
def _phase(draw: st.DrawFn, pid: str, kind: str, first_dose: bool) -> dict[str, Any]:
    manual = draw(st.booleans())
    length = draw(_seconds)
    phase: dict[str, Any] = {"id": pid, "kind": kind, "advance": "manual" if manual else "auto"}
    if draw(st.booleans()):
        phase["title"] = draw(_text)
    if manual:
        if draw(st.booleans()):
            phase["planned"] = length
    else:
        phase["duration"] = length
    if draw(st.booleans()):
        phase["lights"] = draw(_lights())
    if draw(st.booleans()):
        phase["music"] = {"playlist": draw(st.one_of(st.none(), _text)),
                          "volume": draw(st.floats(0, 100)), "fade_in": draw(_seconds),
                          "crossfade": draw(_seconds)}
    at = st.floats(min_value=0, max_value=length, exclude_max=True)
    phase["cues"] = [{"at": a, "text": draw(_text)} for a in draw(st.lists(at, max_size=3))]
    if kind == "dosing" and not manual and first_dose:
        phase["cues"] += [{"since_dose": a, "text": draw(_text)} for a in draw(st.lists(at, max_size=2))]
    return phase


@st.composite
def presets(draw: st.DrawFn) -> Preset:
    kinds = draw(st.lists(st.sampled_from([k.value for k in PhaseKind]), min_size=1, max_size=6))
    first = kinds.index("dosing") if "dosing" in kinds else None
    phases = [draw(_phase(f"p{i}-{kind}", kind, i == first)) for i, kind in enumerate(kinds)]
    return parse_preset({"name": draw(_text), "description": draw(st.text(_chars, max_size=80)),
                         "phases": phases}, "generated")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(presets())
def test_generated_presets_round_trip_through_yaml(preset: Preset) -> None:
    assert parse_preset_yaml(preset_to_yaml(preset)) == preset
