"""Whom roomctl trusts to be the Hue bridge: its HTTPS certificate, checked on every connection.

A Hue bridge's certificate is not one a browser would accept: it is issued by Signify's own
root, names the bridge by its id (the certificate's common name, no subjectAltName), and the
bridge sends only that one certificate (no intermediate). So roomctl checks it itself, on a
connection opened without the system's checks (`unverified_context`):

1. the certificate is the one pinned at pairing (its SHA-256 fingerprint, stored with the
   username: trust on first use), or else
2. it was issued directly by one of Signify's roots below, is in date, and its common name is
   this bridge's id (a bridge that renewed its certificate).

Anything else is refused (`CertificateRefused`), never silently accepted. `BridgeTrust.check`
is the one place this is decided, for the v1 client (http.client) and the v2 one (aiohttp).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from roomctl.drivers.hue.errors import BridgeUnreachable, CertificateRefused

# Signify's roots for Hue bridge certificates.
# - "root-bridge" (C=NL, O=Philips Hue; 2017-2038), SHA-256 F0:BD:8E:65:...:8A:CF: published by
#   Signify on developers.meethue.com, "Application design guidance / Using HTTPS" (as copied
#   from that page on 2021-09-23 into github.com/callionica/hue, hue_bridge_cacert.pem).
# - "Hue Root CA 01" (C=NL, O=Signify Hue; 2025-2050), SHA-256 D8:B8:94:48:...:28:B8: Signify's
#   newer root (Bridge Pro era); the same DER is carried by several independent Hue clients,
#   checked here by its fingerprint.
SIGNIFY_ROOTS_PEM = (
    """-----BEGIN CERTIFICATE-----
MIICMjCCAdigAwIBAgIUO7FSLbaxikuXAljzVaurLXWmFw4wCgYIKoZIzj0EAwIw
OTELMAkGA1UEBhMCTkwxFDASBgNVBAoMC1BoaWxpcHMgSHVlMRQwEgYDVQQDDAty
b290LWJyaWRnZTAiGA8yMDE3MDEwMTAwMDAwMFoYDzIwMzgwMTE5MDMxNDA3WjA5
MQswCQYDVQQGEwJOTDEUMBIGA1UECgwLUGhpbGlwcyBIdWUxFDASBgNVBAMMC3Jv
b3QtYnJpZGdlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjNw2tx2AplOf9x86
aTdvEcL1FU65QDxziKvBpW9XXSIcibAeQiKxegpq8Exbr9v6LBnYbna2VcaK0G22
jOKkTqOBuTCBtjAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAdBgNV
HQ4EFgQUZ2ONTFrDT6o8ItRnKfqWKnHFGmQwdAYDVR0jBG0wa4AUZ2ONTFrDT6o8
ItRnKfqWKnHFGmShPaQ7MDkxCzAJBgNVBAYTAk5MMRQwEgYDVQQKDAtQaGlsaXBz
IEh1ZTEUMBIGA1UEAwwLcm9vdC1icmlkZ2WCFDuxUi22sYpLlwJY81Wrqy11phcO
MAoGCCqGSM49BAMCA0gAMEUCIEBYYEOsa07TH7E5MJnGw557lVkORgit2Rm1h3B2
sFgDAiEA1Fj/C3AN5psFMjo0//mrQebo0eKd3aWRx+pQY08mk48=
-----END CERTIFICATE-----
""",
    """-----BEGIN CERTIFICATE-----
MIIBzDCCAXOgAwIBAgICEAAwCgYIKoZIzj0EAwIwPDELMAkGA1UEBhMCTkwxFDAS
BgNVBAoMC1NpZ25pZnkgSHVlMRcwFQYDVQQDDA5IdWUgUm9vdCBDQSAwMTAgFw0y
NTAyMjUwMDAwMDBaGA8yMDUwMTIzMTIzNTk1OVowPDELMAkGA1UEBhMCTkwxFDAS
BgNVBAoMC1NpZ25pZnkgSHVlMRcwFQYDVQQDDA5IdWUgUm9vdCBDQSAwMTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABFfOO0jfSAUXGQ9kjEDzyBrcMQ3ItyA5krE+
cyvb1Y3xFti7KlAad8UOnAx0FBLn7HZrlmIwm1QnX0fK3LPM13mjYzBhMB0GA1Ud
DgQWBBTF1pSpsCASX/z0VHLigxU2CAaqoTAfBgNVHSMEGDAWgBTF1pSpsCASX/z0
VHLigxU2CAaqoTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq
hkjOPQQDAgNHADBEAiAk7duT+IHbOGO4UUuGLAEpyYejGZK9Z7V9oSfnvuQ5BQIg
IYSgwwxHXm73/JgcU9lAM6c8Bmu3UE3kBIUwBs1qXFw=
-----END CERTIFICATE-----
""",
)


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as ``AB:CD:...`` (as openssl and browsers show it)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalise_fingerprint(text: str) -> str:
    """``ab cd:EF...`` (any case, colons or spaces) -> ``AB:CD:EF:...``; ValueError if it is
    not 32 bytes of hex."""
    digits = "".join(c for c in text if c not in ": ").upper()
    if len(digits) != 64 or any(c not in "0123456789ABCDEF" for c in digits):
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint (64 hex digits)")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def common_name(der: bytes) -> str | None:
    cert = x509.load_der_x509_certificate(der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _roots(pems: tuple[str, ...]) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificate(p.encode()) for p in pems)


def issued_by(der: bytes, roots: tuple[x509.Certificate, ...], now: datetime | None = None) -> bool:
    """Whether one of ``roots`` signed this certificate directly, and it is in date."""
    cert = x509.load_der_x509_certificate(der)
    now = now or datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    for root in roots:
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


Verdict = Literal["pinned", "signify"]


@dataclass(frozen=True)
class BridgeTrust:
    """What a bridge's certificate must be. ``pin`` is the fingerprint stored at pairing,
    ``bridge_id`` the id its certificate must name when it is not the pinned one. ``roots``
    are Signify's (tests give a certificate authority of their own)."""

    host: str
    pin: str | None = None
    bridge_id: str | None = None
    roots_pem: tuple[str, ...] = SIGNIFY_ROOTS_PEM
    _roots: tuple[x509.Certificate, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pin is not None:
            object.__setattr__(self, "pin", normalise_fingerprint(self.pin))
        object.__setattr__(self, "_roots", _roots(self.roots_pem))

    def check(self, der: bytes) -> Verdict:
        """Accept the certificate ``der`` or raise `CertificateRefused` (see the module)."""
        got = fingerprint(der)
        if self.pin is not None and got == self.pin:
            return "pinned"
        if self.bridge_id is not None and issued_by(der, self._roots):
            name = common_name(der)
            if name is not None and name.lower() == self.bridge_id.lower():
                return "signify"
        raise CertificateRefused(self.host, self.bridge_id, got, self.pin)

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return self._roots

    def signify_issued(self, der: bytes) -> bool:
        """Whether Signify's roots signed ``der`` for the bridge its common name says (pairing)."""
        return issued_by(der, self._roots)


def unverified_context() -> ssl.SSLContext:
    """A client context that lets any certificate through the handshake: `BridgeTrust.check`
    decides afterwards, on the certificate the bridge presented."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def split_host(host: str, default_port: int) -> tuple[str, int]:
    """``"10.0.0.2"`` / ``"10.0.0.2:8443"`` / ``"[::1]:443"`` -> (address, port)."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") else default_port
    if host.count(":") == 1:
        address, port = host.split(":")
        return address, int(port)
    return host, default_port


def presented_certificate(host: str, timeout_s: float) -> bytes:
    """The certificate the bridge at ``host`` presents (DER), checked by nobody yet: what
    pairing pins. Blocking."""
    address, port = split_host(host, 443)
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as raw, \
                unverified_context().wrap_socket(raw, server_hostname=address) as tls:
            der = tls.getpeercert(binary_form=True)
    except TimeoutError as exc:
        raise BridgeUnreachable(host, "timed out") from exc
    except ConnectionRefusedError as exc:
        raise BridgeUnreachable(host, "connection refused") from exc
    except ssl.SSLError as exc:
        raise BridgeUnreachable(host, f"no HTTPS here ({exc.reason or exc})") from exc
    except OSError as exc:
        raise BridgeUnreachable(host, exc.strerror or str(exc)) from exc
    if not der:
        raise BridgeUnreachable(host, "presented no certificate")
    return der
