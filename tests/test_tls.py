"""The local certificate authority and the server certificate (roomctl/tls.py), checked with
cryptography's own X.509 path validation, as a browser validates them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from roomctl.cli.serve import prepare_tls
from roomctl.tls import CA_KEY, RENEW_BEFORE, clinic_tls, local_tls, machine_names, service_names
from testkit.servers import demo_test_config

NAMES = ["roomctl.clinic.lan", "192.168.1.50", "localhost", "127.0.0.1", "::1"]


def _chain(tls_cert: Path) -> tuple[x509.Certificate, x509.Certificate]:
    leaf, ca = x509.load_pem_x509_certificates(tls_cert.read_bytes())
    return leaf, ca


def _verify(ca: x509.Certificate, leaf: x509.Certificate, name: x509.DNSName | x509.IPAddress) -> None:
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    verifier.verify(leaf, [])


def test_the_server_certificate_validates_for_every_name(tmp_path: Path) -> None:
    tls = local_tls(tmp_path, NAMES)
    leaf, ca = _chain(tls.certfile)
    assert ca.fingerprint(hashes.SHA256()).hex(":").upper() == tls.ca_fingerprint
    _verify(ca, leaf, x509.DNSName("roomctl.clinic.lan"))
    _verify(ca, leaf, x509.IPAddress(ipaddress.ip_address("192.168.1.50")))
    _verify(ca, leaf, x509.IPAddress(ipaddress.ip_address("::1")))
    with pytest.raises(VerificationError):
        _verify(ca, leaf, x509.DNSName("other.clinic.lan"))
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=398)
    assert tls.uncovered == ()
    for name in ("ca-key.pem", "server-key.pem", "ca.pem", "server.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_a_stolen_ca_key_cannot_vouch_for_a_site_on_the_internet(tmp_path: Path) -> None:
    tls = local_tls(tmp_path, NAMES)
    _, ca = _chain(tls.certfile)
    ca_key = serialization.load_pem_private_key((tmp_path / CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    rogue = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.bank.example")]))
             .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
             .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.bank.example"),
                                                         x509.IPAddress(ipaddress.ip_address("93.184.215.14"))]),
                            critical=False)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
             .sign(ca_key, hashes.SHA256()))
    with pytest.raises(VerificationError) as refused:
        _verify(ca, rogue, x509.DNSName("www.bank.example"))
    assert "no permitted name constraints matched" in str(refused.value)


def test_the_server_certificate_is_kept_renewed_and_reissued_for_new_names(tmp_path: Path) -> None:
    first = local_tls(tmp_path, NAMES)
    assert local_tls(tmp_path, NAMES).not_after == first.not_after  # kept
    due = first.not_after - RENEW_BEFORE + dt.timedelta(days=1)
    assert first.needs_renewal(due) and not first.needs_renewal()
    renewed = local_tls(tmp_path, NAMES, now=due)
    assert renewed.not_after > first.not_after and renewed.ca_fingerprint == first.ca_fingerprint
    more = local_tls(tmp_path, [*NAMES, "10.0.0.7"])
    assert "10.0.0.7" in more.names and more.ca_fingerprint == first.ca_fingerprint
    outside = local_tls(tmp_path, [*NAMES, "roomctl.example.org"])  # after the CA was made
    assert outside.uncovered == ("roomctl.example.org",)


def test_a_clinic_certificate_is_served_as_given(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roomctl.clinic.example")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("roomctl.clinic.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    config = demo_test_config(tmp_path / "data", listen={"host": "127.0.0.1", "cert_file": str(tmp_path / "cert.pem"),
                                                         "key_file": str(tmp_path / "key.pem")})
    tls = prepare_tls(config)
    assert tls is not None and tls.ca_file is None and tls.names == ("roomctl.clinic.example",)
    assert not tls.needs_renewal(now + dt.timedelta(days=89))  # roomctl never touches a clinic's certificate
    assert not (tmp_path / "data" / "tls").exists()
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(Exception, match="not a PEM"):
        clinic_tls(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_loopback_stays_plain_http_and_every_interface_gets_the_machines_names(tmp_path: Path) -> None:
    assert prepare_tls(demo_test_config(tmp_path)) is None  # the demo, `make run`
    lan = demo_test_config(tmp_path, listen={"host": "0.0.0.0", "hosts": ["roomctl.clinic.lan"]})
    assert lan.listen.https
    names = service_names(lan.listen)
    assert names[0] == "roomctl.clinic.lan" and {"127.0.0.1", "localhost"} <= set(names)
    assert set(machine_names()) <= set(names)
