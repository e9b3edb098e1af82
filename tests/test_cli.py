"""`roomctl` as a user runs it: a real process, its exit status and what it prints."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from roomctl.preset import PresetError, load_preset, preset_files

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "broken_presets"


def roomctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roomctl.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def test_validate_the_bundled_presets() -> None:
    result = roomctl("presets", "validate", "roomctl/presets/")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "esketamine-monitored.yaml: ok — Esketamine, monitored, 5 phases, 2h30m planned",
        "kap-intramuscular.yaml: ok — KAP intramuscular, 5 phases, 1h45m planned",
        "kap-sublingual.yaml: ok — KAP sublingual, 5 phases, 2h5m planned",
        "ketamine-infusion.yaml: ok — Ketamine infusion, 4 phases, 1h55m planned",
        "psilocybin-long.yaml: ok — Psilocybin-style long session, 6 phases, 6h30m planned",
        "tour.yaml: ok — Tour, 5 phases, 3m planned",
    ]


def test_validate_lists_one_line_per_mistake() -> None:
    result = roomctl("presets", "validate", "tests/broken_presets")
    assert result.returncode == 1
    files = preset_files(BROKEN)
    expected: list[str] = []
    for f in files:
        with pytest.raises(PresetError) as info:
            load_preset(f)
        assert len(info.value.problems) == 1
        expected.append(str(info.value.problems[0]))
    lines = result.stdout.splitlines()
    assert lines == [*expected, f"{len(files)} of {len(files)} preset files have problems"]
    assert "brightness-above-100.yaml: phase 'journey': lights.brightness: 140 is above 100" in lines
    assert result.stderr == ""  # no traceback


def test_validate_mixed_files_and_a_missing_path(tmp_path: Path) -> None:
    result = roomctl("presets", "validate", "roomctl/presets/tour.yaml", "tests/broken_presets/no-phases.yaml")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "tour.yaml: ok — Tour, 5 phases, 3m planned",
        "no-phases.yaml: phases: a preset needs at least one phase",
        "1 of 2 preset files have problems",
    ]
    missing = roomctl("presets", "validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stdout
    empty = roomctl("presets", "validate", str(tmp_path))
    assert empty.returncode == 1 and "no preset files found" in empty.stdout


def test_show_prints_each_phase() -> None:
    result = roomctl("presets", "show", "roomctl/presets/kap-sublingual.yaml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("KAP sublingual\n")
    rows = {m.group(2): m.group(1) for m in re.finditer(r"^\s*(\d:\d\d:\d\d)\s+([a-z-]+)\s", out, re.M)}
    assert rows == {"preparation": "0:00:00", "dosing": "0:15:00", "journey": "0:30:00",
                    "return": "1:25:00", "integration": "1:45:00"}
    assert "~15m" in out  # a manual phase's planned time is a guide
    assert "reminder dose+30m: Check blood pressure" in out
    assert "reminder +12m: Spit or swallow the lozenge" in out
    assert "total planned: 2:05:00" in out


def test_show_a_broken_preset() -> None:
    result = roomctl("presets", "show", "tests/broken_presets/bad-kind.yaml")
    assert result.returncode == 1
    assert result.stdout.startswith("bad-kind.yaml: phase 'journey': kind: 'trip' is not one of")


def test_simulate_prints_the_whole_session_quickly() -> None:
    result = roomctl("simulate", "roomctl/presets/kap-sublingual.yaml", "--instant")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    events = [tuple(line.split(None, 2)) for line in lines[:-1]]
    assert all(re.fullmatch(r"\d:\d\d:\d\d", e[0]) for e in events)

    def at(what: str) -> list[tuple[str, str]]:
        return [(e[0], e[2]) for e in events if e[1] == what]

    assert [(t, text.split(" — ")[0]) for t, text in at("phase")] == [
        ("0:00:00", "preparation"), ("0:15:00", "dosing"), ("0:30:00", "journey"),
        ("1:25:00", "return"), ("1:45:00", "integration")]
    assert at("lights") == [
        ("0:00:00", "60% 2700K over 30s"), ("0:15:00", "35% 2400K over 2m"),
        ("0:30:00", "12% #ff8a3d over 5m"), ("1:25:00", "35% 2700K over 15m"),
        ("1:45:00", "55% 3000K over 3m")]
    assert at("music") == [
        ("0:00:00", "fade in: arrival at 35%"), ("0:15:00", "crossfade: dosing at 40%"),
        ("0:30:00", "crossfade: journey at 45%"), ("1:25:00", "crossfade: return at 35%"),
        ("1:45:00", "crossfade: integration at 25%"), ("2:05:00", "fade out over 15s")]
    assert at("cue") == [
        ("0:05:00", "Baseline blood pressure and consent checklist  [preparation/0]"),
        ("0:27:00", "Spit or swallow the lozenge  [dosing/0]"),
        ("0:45:00", "Check blood pressure  [journey/0]"),
        ("1:15:00", "Check blood pressure  [journey/1]"),
        ("1:55:00", "Discharge check before the client leaves  [integration/0]")]
    assert events[-1] == ("2:05:00", "end", "session complete")
    times = [e[0] for e in events]
    assert times == sorted(times)
    last = re.fullmatch(r"-- simulated 2:05:00 of session in (\d+\.\d\d) s", lines[-1])
    assert last is not None, lines[-1]
    assert float(last.group(1)) < 1.0


@pytest.mark.parametrize("path", sorted((ROOT / "roomctl" / "presets").glob("*.yaml")), ids=lambda p: p.name)
def test_simulate_every_bundled_preset_to_its_end(path: Path) -> None:
    result = roomctl("simulate", str(path), "--instant")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    preset = load_preset(path)
    assert len([line for line in lines if line.split()[1:2] == ["phase"]]) == len(preset.phases)
    assert lines[-2].endswith("end      session complete")
    assert re.fullmatch(r"-- simulated \d:\d\d:\d\d of session in \d+\.\d\d s", lines[-1])


def test_simulate_a_broken_preset() -> None:
    result = roomctl("simulate", "tests/broken_presets/zero-duration.yaml", "--instant")
    assert result.returncode == 1
    assert result.stdout.strip() == "zero-duration.yaml: phase 'journey': duration: 0s must be more than 0"
