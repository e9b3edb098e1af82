"""HTTPS for the Hue bridge emulators: certificates made at test time with trustme.

A `StandInSignify` plays Signify's private root: it issues a bridge a certificate whose common
name is the bridge id, as Signify does. A second one plays an impostor. Fingerprints are
computed here with hashlib, independently of roomctl's own TLS code.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

import trustme

DEFAULT_BRIDGE_ID = "001788fffe000001"


@dataclass(frozen=True)
class BridgeCertificate:
    """A certificate (and key) a bridge presents."""

    leaf: trustme.LeafCert
    common_name: str

    @property
    def pem(self) -> bytes:
        return self.leaf.cert_chain_pems[0].bytes()

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.pem.decode())

    @property
    def sha256(self) -> str:
        """``AB:CD:...``, the form roomctl stores as the pin."""
        digest = hashlib.sha256(self.der).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.leaf.configure_cert(context)
        return context


class StandInSignify:
    """A certificate authority standing in for Signify's root in tests."""

    def __init__(self, organization: str = "Signify stand-in") -> None:
        self._ca = trustme.CA(organization_name=organization)

    @property
    def root_pem(self) -> str:
        return self._ca.cert_pem.bytes().decode()

    def issue(self, bridge_id: str = DEFAULT_BRIDGE_ID) -> BridgeCertificate:
        return BridgeCertificate(self._ca.issue_cert(common_name=bridge_id), bridge_id)
