"""Hue over HTTPS (v1 through phue): the bridge's certificate is checked on every connection.

The emulator presents certificates made at test time by a stand-in for Signify's root; the
pin is computed by the test kit, independently of roomctl's TLS code.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from roomctl import units
from roomctl.clock import RealClock
from roomctl.drivers.hue import BridgeUnreachable, CertificateRefused, HueOptions, build_hue_lights
from roomctl.drivers.hue.client import HueBridgeClient
from roomctl.drivers.hue.tls import (
    SIGNIFY_ROOTS_PEM,
    BridgeTrust,
    common_name,
    fingerprint,
    issued_by,
    normalise_fingerprint,
    presented_certificate,
)
from roomctl.room import LightLook
from testkit.bridge_tls import DEFAULT_BRIDGE_ID, StandInSignify
from testkit.hue_bridge import DEFAULT_USER, HueBridgeEmulator


@pytest.fixture(scope="module")
def signify() -> StandInSignify:
    return StandInSignify()


@pytest.fixture
def bridge(signify: StandInSignify) -> Iterator[HueBridgeEmulator]:
    with HueBridgeEmulator(certificate=signify.issue()) as emulator:
        yield emulator


def pinned(bridge: HueBridgeEmulator, roots: StandInSignify | None = None) -> BridgeTrust:
    """What pairing stored: the pin and the bridge id (and, in a test, the stand-in root)."""
    cert = bridge.certificate
    assert cert is not None
    if roots is None:
        return BridgeTrust(bridge.host, pin=cert.sha256, bridge_id=bridge.bridge_id)
    return BridgeTrust(bridge.host, pin=cert.sha256, bridge_id=bridge.bridge_id,
                       roots_pem=(roots.root_pem,))


def test_the_bundled_signify_roots_are_the_published_ones() -> None:
    prints = [fingerprint(ssl.PEM_cert_to_DER_cert(pem)) for pem in SIGNIFY_ROOTS_PEM]
    assert [p.replace(":", "") for p in prints] == [
        "F0BD8E6509E82F774D63BC009D5388C969FE3DCF7D6D541D6351B72B898D8ACF",
        "D8B89448B2AF8E1676185AC07219EE9DCBC8F01C122A026A2A4B7B5CFE0328B8"]


def test_fingerprints_read_in_any_common_form() -> None:
    colon = normalise_fingerprint("ab" * 32)
    assert colon == ":".join(["AB"] * 32)
    assert normalise_fingerprint(colon.lower()) == colon
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        normalise_fingerprint("AB:CD")


def test_the_pinned_certificate_is_accepted_and_the_lights_are_driven(
        bridge: HueBridgeEmulator) -> None:
    client = HueBridgeClient(bridge.host, DEFAULT_USER, trust=pinned(bridge))
    assert set(client.lights_now()) == {"1", "2", "3", "4"}
    assert client.put_light_state("1", {"bri": 50, "transitiontime": 0})[:1] == [
        {"success": {"/lights/1/state/bri": 50}}]
    assert bridge.light_state("1")["bri"] == 50


def test_what_the_bridge_presents_is_what_pairing_pins(bridge: HueBridgeEmulator) -> None:
    der = presented_certificate(bridge.host, 2.0)
    assert bridge.certificate is not None
    assert fingerprint(der) == bridge.certificate.sha256
    assert common_name(der) == DEFAULT_BRIDGE_ID


def test_a_different_certificate_is_refused_with_a_message_naming_the_bridge(
        bridge: HueBridgeEmulator) -> None:
    trust = pinned(bridge)
    impostor = StandInSignify("Someone else").issue(DEFAULT_BRIDGE_ID)
    bridge.present(impostor)
    client = HueBridgeClient(bridge.host, DEFAULT_USER, trust=trust)
    with pytest.raises(CertificateRefused) as refused:
        client.lights_now()
    message = str(refused.value)
    assert message.startswith(f"Hue bridge {bridge.host} (id {DEFAULT_BRIDGE_ID}) presented a "
                              f"certificate (SHA-256 {impostor.sha256[:23]}…) that is not the one "
                              "pinned at pairing")
    assert f"pair again with `roomctl hue pair --bridge {bridge.host}`" in message
    assert [r for r in bridge.requests] == []  # nothing was sent to it, not even a GET


def test_a_certificate_signify_issued_to_the_same_bridge_is_accepted(
        bridge: HueBridgeEmulator, signify: StandInSignify) -> None:
    """A bridge that renewed its certificate: not the pinned one, but Signify's for this id."""
    trust = pinned(bridge, signify)
    bridge.present(signify.issue(DEFAULT_BRIDGE_ID))
    client = HueBridgeClient(bridge.host, DEFAULT_USER, trust=trust)
    assert set(client.groups_now()) == {"1"}


def test_signify_issued_to_another_bridge_is_refused(bridge: HueBridgeEmulator,
                                                     signify: StandInSignify) -> None:
    trust = pinned(bridge, signify)
    bridge.present(signify.issue("001788fffe0000ff"))  # a real Hue bridge, but not this one
    with pytest.raises(CertificateRefused, match=f"not one Signify issued to bridge {DEFAULT_BRIDGE_ID}"):
        HueBridgeClient(bridge.host, DEFAULT_USER, trust=trust).lights_now()


def test_signify_issued_alone_needs_the_bridge_id(signify: StandInSignify) -> None:
    cert = signify.issue()
    roots = (signify.root_pem,)
    assert BridgeTrust("h", bridge_id=DEFAULT_BRIDGE_ID.upper(), roots_pem=roots).check(
        cert.der) == "signify"  # ids compare without case (the v1 config says them upper-case)
    with pytest.raises(CertificateRefused):
        BridgeTrust("h", roots_pem=roots).check(cert.der)
    assert issued_by(cert.der, BridgeTrust("h", roots_pem=roots).roots)
    later = datetime(3001, 1, 1, tzinfo=UTC)  # trustme certificates end in 3000
    assert not issued_by(cert.der, BridgeTrust("h", roots_pem=roots).roots, now=later)


async def test_a_room_on_an_impostor_is_degraded_and_sends_nothing(
        bridge: HueBridgeEmulator) -> None:
    room = build_hue_lights(bridge.host, DEFAULT_USER, "1", None, RealClock(),
                            trust=pinned(bridge), options=HueOptions(request_timeout_s=1.0))
    try:
        await room.connect()
        await room.apply(LightLook(40, 2700), 0)
        await room.drain()
        assert bridge.group_puts()[-1].body["bri"] == units.percent_to_bri(40)
        bridge.present(StandInSignify("Impostor").issue(DEFAULT_BRIDGE_ID))
        before = len(bridge.requests)
        await room.apply(LightLook(80, 2700), 0)
        await room.drain()
        health = room.health()
        assert not health.ok and health.detail is not None
        assert health.detail.startswith(f"Hue bridge {bridge.host} (id {DEFAULT_BRIDGE_ID}) "
                                        "presented a certificate")
        assert bridge.requests[before:] == []
    finally:
        await room.close()


def test_plain_http_only_when_asked() -> None:
    with HueBridgeEmulator() as plain:
        assert set(HueBridgeClient(plain.host, DEFAULT_USER, trust=None).lights_now()) == {
            "1", "2", "3", "4"}
        with pytest.raises(BridgeUnreachable, match="no HTTPS here"):
            HueBridgeClient(plain.host, DEFAULT_USER, trust=BridgeTrust(
                plain.host, pin="00" * 32), timeout_s=1.0).lights_now()
