"""The simulated room: bulbs that fade in time, and playlists that play, ramp and loop."""

import pytest

from roomctl.clock import VirtualClock
from roomctl.drivers.simulated import SimulatedAudio, SimulatedLights
from roomctl.room import LightLook, MusicTarget

START = 1_000_000.0


async def test_lights_fade_in_time(clock: VirtualClock, lights: SimulatedLights) -> None:
    await lights.apply(LightLook(60, color_temp=2700), 0)
    assert {r.brightness for r in lights.readings()} == {60}
    await lights.apply(LightLook(20, color_temp=2000), 10)
    assert lights.readings()[0].brightness == 60 and lights.readings()[0].color_temp == 2700
    await clock.advance(5)
    mid = lights.readings()[0]
    assert mid.brightness == 40
    assert mid.color_temp == 2299  # half way in mireds: (370 + 500) / 2 = 435 mireds
    await clock.advance(5)
    assert lights.readings()[0].brightness == 20 and lights.readings()[0].color_temp == 2000
    await clock.advance(100)
    assert lights.readings()[0].brightness == 20


async def test_a_new_command_mid_fade_starts_where_the_bulb_is(clock: VirtualClock,
                                                               lights: SimulatedLights) -> None:
    await lights.apply(LightLook(0, color_temp=2700), 0)
    await lights.apply(LightLook(100, color_temp=2700), 10)
    await clock.advance(4)
    await lights.apply(LightLook(0, color_temp=2700), 4)  # back down from 40 %
    assert lights.readings()[0].brightness == 40
    await clock.advance(1)
    assert lights.readings()[0].brightness == 30


async def test_a_bulb_starting_a_fade_shows_exactly_its_old_look(lights: SimulatedLights) -> None:
    await lights.apply(LightLook(50, color_temp=2541), 0)
    await lights.apply(LightLook(50, color="#ff0000"), 10)
    reading = lights.readings()[0]
    assert (reading.color_temp, reading.color) == (2541, None)


async def test_lights_fade_into_a_colour(clock: VirtualClock, lights: SimulatedLights) -> None:
    await lights.apply(LightLook(50, color="#000000"), 0)
    await lights.apply(LightLook(50, color="#ff8040"), 2)
    await clock.advance(1)
    reading = lights.readings()[0]
    assert reading.color == "#804020" and reading.color_temp is None
    assert reading.display_rgb() == "#804020"


async def test_light_readings_and_history(clock: VirtualClock) -> None:
    heard: list[tuple[LightLook, float]] = []
    lights = SimulatedLights(clock, names=["Left", "Right"],
                             listener=lambda look, s: heard.append((look, s)))
    await lights.apply(LightLook(0, color_temp=2700), 0)
    assert [(r.id, r.name, r.on) for r in lights.readings()] == [("1", "Left", False), ("2", "Right", False)]
    await clock.advance(2)
    await lights.apply(LightLook(35.55, color="#ff8a3d"), 1.5)
    await clock.advance(2)
    assert [(r.on, r.brightness, r.color) for r in lights.readings()] == [(True, 35.5, "#ff8a3d")] * 2
    assert lights.commands == [(START, LightLook(0, color_temp=2700), 0),
                               (START + 2, LightLook(35.55, color="#ff8a3d"), 1.5)]
    assert heard == [(c[1], c[2]) for c in lights.commands]
    assert lights.health().ok
    await lights.close()


@pytest.mark.parametrize(
    ("look", "transition", "message"),
    [
        (LightLook(101, color_temp=2700), 1.0, "brightness 101 outside 0-100"),
        (LightLook(-1, color_temp=2700), 1.0, "brightness -1 outside 0-100"),
        (LightLook(50, color_temp=2700, color="#ffffff"), 1.0, "both color and color_temp set"),
        (LightLook(50, color_temp=2700), -0.1, "negative transition -0.1"),
    ],
)
async def test_light_misuse_raises(lights: SimulatedLights, look: LightLook, transition: float,
                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await lights.apply(look, transition)
    assert lights.commands == []


def target(playlist: str | None, volume: float = 50, **kw: float | bool) -> MusicTarget:
    return MusicTarget(playlist, volume, **kw)  # type: ignore[arg-type]


async def test_music_fades_in_ramps_and_crossfades(clock: VirtualClock, audio: SimulatedAudio) -> None:
    assert audio.snapshot().playlist is None and not audio.snapshot().playing
    await audio.apply(target("arrival", 40, fade_in_s=20))
    await clock.advance(10)
    snap = audio.snapshot()
    assert (snap.playlist, snap.volume, snap.playing) == ("arrival", 20, True)
    await clock.advance(10)
    assert audio.snapshot().volume == 40
    await audio.apply(target("arrival", 10, ramp_s=3))
    await clock.advance(1.5)
    assert audio.snapshot().volume == 25
    await clock.advance(5)
    await audio.apply(target("journey", 60, crossfade_s=30))
    await clock.advance(15)
    assert audio.snapshot().playlist == "journey" and audio.snapshot().volume == 30
    await audio.apply(target(None, 0, ramp_s=10))
    await clock.advance(5)
    snap = audio.snapshot()
    assert snap.volume == 15 and not snap.playing and snap.now_playing is None  # 30 % fading out
    await clock.advance(5)
    assert audio.snapshot().volume == 0
    assert [how for _, how, _ in audio.commands] == ["fade in", "volume", "crossfade", "fade out"]


async def test_music_apply_is_idempotent(audio: SimulatedAudio) -> None:
    await audio.apply(target("a", 30))
    await audio.apply(target("a", 30))
    assert len(audio.commands) == 1


async def test_music_volume_is_capped(clock: VirtualClock) -> None:
    heard: list[MusicTarget] = []
    audio = SimulatedAudio(clock, max_volume=30, listener=lambda _how, t: heard.append(t))
    await audio.apply(target("a", 80, fade_in_s=0))
    assert audio.snapshot().volume == 30
    assert heard[0].volume == 30


async def test_pause_keeps_the_place_in_the_track(clock: VirtualClock, audio: SimulatedAudio) -> None:
    await audio.apply(target("a", 50, fade_in_s=0))
    await clock.advance(100)
    await audio.apply(target("a", 50, playing=False, ramp_s=2))
    await clock.advance(1)
    assert audio.snapshot().volume == 25  # fading down to silence
    await clock.advance(500)
    snap = audio.snapshot()
    assert not snap.playing and snap.volume == 0
    assert snap.now_playing is not None and snap.now_playing.position_s == 100
    await audio.apply(target("a", 50, playing=True, ramp_s=2))
    await clock.advance(40)
    snap = audio.snapshot()
    assert snap.playing and snap.volume == 50
    assert snap.now_playing is not None and snap.now_playing.position_s == 140
    assert [how for _, how, _ in audio.commands] == ["fade in", "pause", "play"]


async def test_tracks_follow_each_other_and_the_playlist_loops(clock: VirtualClock,
                                                               audio: SimulatedAudio) -> None:
    await audio.apply(target("deep", 50))
    titles = []
    for _ in range(4):
        now = audio.snapshot().now_playing
        assert now is not None
        titles.append((now.title, now.position_s))
        await clock.advance(SimulatedAudio.TRACK_S)
    assert titles == [("deep I", 0), ("deep II", 0), ("deep III", 0), ("deep I", 0)]
    await clock.advance(30)
    now = audio.snapshot().now_playing
    assert now is not None and (now.title, now.position_s, now.duration_s) == ("deep II", 30, 240)
    assert now.file == "sim://deep/1"


async def test_skip_next_and_previous(clock: VirtualClock, audio: SimulatedAudio) -> None:
    await audio.apply(target("deep", 50))
    await clock.advance(60)
    await audio.skip("next")
    now = audio.snapshot().now_playing
    assert now is not None and (now.title, now.position_s) == ("deep II", 0)
    await audio.skip("previous")
    await audio.skip("previous")
    now = audio.snapshot().now_playing
    assert now is not None and now.title == "deep III"


async def test_skip_with_nothing_playing_does_nothing(audio: SimulatedAudio) -> None:
    await audio.skip("next")
    assert audio.snapshot().now_playing is None


@pytest.mark.parametrize(
    ("music", "message"),
    [(target("a", 101), "volume 101 outside 0-100"), (target("a", -1), "volume -1 outside 0-100"),
     (target("a", 50, ramp_s=-1), "negative fade"), (target("a", 50, crossfade_s=-1), "negative fade")],
)
async def test_music_misuse_raises(audio: SimulatedAudio, music: MusicTarget, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await audio.apply(music)
    assert audio.commands == []


async def test_preflight(clock: VirtualClock, audio: SimulatedAudio) -> None:
    reports = await audio.preflight(["arrival", "journey"])
    assert [(r.name, r.playable, r.ok) for r in reports] == [("arrival", 3, True), ("journey", 3, True)]
    configured = SimulatedAudio(clock, playlists={"arrival": ["a.flac", "b.flac"]})
    ok, missing = await configured.preflight(["arrival", "missing"])
    assert (ok.playable, ok.ok, ok.problems) == (2, True, ())
    assert (missing.playable, missing.ok) == (0, False)
    assert missing.problems == ("playlist 'missing' is not in this room's config",)
    assert configured.health().ok
    await configured.close()
