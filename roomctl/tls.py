"""HTTPS for the tablets: a local certificate authority and the server's certificate.

On first start beyond loopback roomctl makes a certificate authority of its own in
``<data_dir>/tls`` (its key never leaves that folder) and a server certificate signed by it
for every name and address the tablets use. Each tablet installs the CA's certificate once;
from then on it trusts roomctl's HTTPS, and the server certificate is renewed (a month before
it expires, and whenever the names change) without the tablets noticing.

The CA is limited by name constraints to local names and private addresses: should its key
ever leak, it cannot be used to impersonate a site on the internet to the tablets.
A clinic can give its own certificate instead (`ClinicCertificate`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import logging
import os
import socket
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from roomctl.config import ListenConfig

log = logging.getLogger(__name__)

CA_DAYS = 3650  # the tablets install the CA once: ten years
SERVER_DAYS = 397  # within what every browser accepts for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"  # the server certificate followed by the CA's: the chain uvicorn sends
SERVER_KEY = "server-key.pem"

# Where a local CA may vouch for a name: local DNS names and private, loopback and link-local
# addresses (RFC 1918, RFC 6598 shared space, RFC 4193 unique local). Configured names beyond
# these are added when the CA is made.
LOCAL_DNS = ("localhost", "local", "lan", "home.arpa", "internal")
LOCAL_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
              "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10")


class TLSError(Exception):
    """The certificate cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class ServerTLS:
    """What uvicorn serves and what the tablets are told."""

    certfile: Path  # PEM: the server certificate and its chain
    keyfile: Path
    not_after: dt.datetime
    names: tuple[str, ...]  # the DNS names and addresses the certificate is valid for
    ca_file: Path | None = None  # the local CA's certificate; None for a clinic's own certificate
    ca_fingerprint: str | None = None  # SHA-256 of the CA certificate, "AB:CD:…"
    uncovered: tuple[str, ...] = ()  # names the CA's constraints do not allow: tablets refuse them

    @property
    def ca_der(self) -> bytes | None:
        """The CA certificate in DER (.crt): what a tablet installs."""
        if self.ca_file is None:
            return None
        return x509.load_pem_x509_certificate(self.ca_file.read_bytes()).public_bytes(serialization.Encoding.DER)

    def needs_renewal(self, now: dt.datetime | None = None) -> bool:
        return self.ca_file is not None and self.not_after - _now(now) < RENEW_BEFORE


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 as the tablets show it: upper-case hex in pairs, joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


# --- names --------------------------------------------------------------------------------


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def machine_names() -> list[str]:
    """This machine's host names and its interfaces' addresses: what a tablet may type."""
    names: list[str] = []
    host = socket.gethostname()
    if host:
        names += [host, host if "." in host else f"{host}.local"]
    with contextlib.suppress(OSError):
        fqdn = socket.getfqdn()
        if "." in fqdn and not fqdn.startswith("localhost"):
            names.append(fqdn)
    names += _interface_addresses()
    return list(dict.fromkeys(n.lower() for n in names))


def _interface_addresses() -> list[str]:
    """IPv4 addresses of every interface (Linux ioctl), IPv6 ones from /proc; best effort."""
    found: list[str] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                req = struct.pack("256s", name.encode()[:15])
                answer = fcntl.ioctl(s.fileno(), 0x8915, req)  # SIOCGIFADDR
                found.append(socket.inet_ntoa(answer[20:24]))
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            addr = ipaddress.IPv6Address(bytes.fromhex(raw))
            if not addr.is_link_local:  # a link-local address needs a zone: no tablet types it
                found.append(str(addr))
    return found


WILDCARD = ("0.0.0.0", "::", "")


def service_names(listen: ListenConfig) -> list[str]:
    """The names and addresses tablets may use: the configured ones, the listen address (or,
    listening on every interface, this machine's names and addresses), and loopback."""
    names = [*listen.hosts]
    names += machine_names() if listen.host in WILDCARD else [listen.host]
    names += ["localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(n.lower() for n in names))


def _split(names: Iterable[str]) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in dict.fromkeys(n.lower() for n in names):
        addr = _address(name)
        if addr is not None:
            if addr not in ips:
                ips.append(addr)
        elif name:
            dns.append(name.rstrip("."))
    return dns, ips


# --- files ---------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, readable by this user only: keys and certificates live in the data folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{path}: not the EC key roomctl makes")
    return key


# --- the local certificate authority ----------------------------------------------------


def _make_ca(folder: Path, names: Sequence[str],
             now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "roomctl"
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "roomctl"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"roomctl local CA ({host})"[:64])])
    dns, ips = _split(names)
    dns_trees = list(dict.fromkeys([*LOCAL_DNS, *(d for d in dns if not _local_dns(d))]))
    nets = [ipaddress.ip_network(n) for n in LOCAL_NETS]
    nets += [ipaddress.ip_network(ip) for ip in ips if not any(ip in n for n in nets)]
    constraints = x509.NameConstraints(
        permitted_subtrees=[*(x509.DNSName(d) for d in dns_trees), *(x509.IPAddress(n) for n in nets)],
        excluded_subtrees=None)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(constraints, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(folder / CA_KEY, _key_pem(key))
    _write_private(folder / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    log.info("made a local certificate authority in %s (SHA-256 %s)", folder, fingerprint(cert))
    return cert, key


def _local_dns(name: str) -> bool:
    return any(name == d or name.endswith("." + d) for d in LOCAL_DNS)


def _permits(ca: x509.Certificate, name: str) -> bool:
    """Whether the CA's name constraints allow ``name`` (so tablets accept it)."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return True
    permitted = constraints.permitted_subtrees or []
    addr = _address(name)
    if addr is not None:
        return any(isinstance(t, x509.IPAddress) and isinstance(t.value, ipaddress.IPv4Network | ipaddress.IPv6Network)
                   and addr in t.value for t in permitted)
    name = name.lower().rstrip(".")
    return any(isinstance(t, x509.DNSName) and (name == t.value or name.endswith("." + t.value)) for t in permitted)


def _issue(folder: Path, names: Sequence[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
           now: dt.datetime) -> None:
    dns, ips = _split(names)
    key = ec.generate_private_key(ec.SECP256R1())
    first = dns[0] if dns else str(ips[0])
    san = x509.SubjectAlternativeName([*(x509.DNSName(d) for d in dns), *(x509.IPAddress(i) for i in ips)])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "roomctl"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # Valid from the real present even when asked about a later moment (renewal checks).
            .not_valid_before(min(now, dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1))
            .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(san, critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    # The key first: a reader that finds the new certificate always finds its key.
    _write_private(folder / SERVER_KEY, _key_pem(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    _write_private(folder / SERVER_CERT, chain)
    log.info("issued the server certificate for %s, valid until %s", ", ".join(names),
             cert.not_valid_after_utc.date().isoformat())


def local_tls(folder: Path, names: Sequence[str], now: dt.datetime | None = None) -> ServerTLS:
    """The local CA and a current server certificate for ``names``, made when missing. The
    server certificate is issued again when it expires within `RENEW_BEFORE`, or when it
    does not cover every name. A blocking call (files, key generation)."""
    when = _now(now)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_path, ca_key_path = folder / CA_CERT, folder / CA_KEY
    try:
        if ca_path.exists() and ca_key_path.exists():
            ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
            ca_key = _load_key(ca_key_path)
        else:
            ca, ca_key = _make_ca(folder, names, when)
    except (OSError, ValueError) as err:
        raise TLSError(f"the local certificate authority in {folder} cannot be read: {err}. Move {CA_CERT} "
                       f"and {CA_KEY} aside to make a new one (then install it again on each tablet)") from None
    if ca.not_valid_after_utc - when < RENEW_BEFORE:
        raise TLSError(f"the local certificate authority in {folder} expires on "
                       f"{ca.not_valid_after_utc.date().isoformat()}: move {CA_CERT} and {CA_KEY} aside to make a "
                       "new one, then install it on each tablet")
    wanted = set(_canonical(names))
    current = _read_server(folder)
    if current is None or current[0].not_valid_after_utc - when < RENEW_BEFORE or wanted - current[1] \
            or current[0].issuer != ca.subject:
        _issue(folder, names, ca, ca_key, when)
        current = _read_server(folder)
        assert current is not None
    cert, covered = current
    return ServerTLS(folder / SERVER_CERT, folder / SERVER_KEY, cert.not_valid_after_utc, tuple(sorted(covered)),
                     ca_path, fingerprint(ca), tuple(n for n in names if not _permits(ca, n)))


def _canonical(names: Iterable[str]) -> list[str]:
    dns, ips = _split(names)
    return [*dns, *(str(i) for i in ips)]


def _read_server(folder: Path) -> tuple[x509.Certificate, set[str]] | None:
    path, key = folder / SERVER_CERT, folder / SERVER_KEY
    if not path.exists() or not key.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None  # damaged or not ours: issue a new one
    covered = {*(d.lower() for d in san.get_values_for_type(x509.DNSName)),
               *(str(i) for i in san.get_values_for_type(x509.IPAddress))}
    return cert, covered


def clinic_tls(certfile: Path, keyfile: Path) -> ServerTLS:
    """A clinic's own certificate (PEM chain) and key, as they are: roomctl does not renew it."""
    try:
        certs = x509.load_pem_x509_certificates(certfile.read_bytes())
        serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    except OSError as err:
        raise TLSError(f"cannot read the certificate: {err}") from None
    except (ValueError, TypeError) as err:
        raise TLSError(f"{certfile} / {keyfile}: not a PEM certificate and unencrypted key: {err}") from None
    leaf = certs[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = (*san.get_values_for_type(x509.DNSName), *(str(i) for i in san.get_values_for_type(x509.IPAddress)))
    except x509.ExtensionNotFound:
        names = ()
    return ServerTLS(certfile, keyfile, leaf.not_valid_after_utc, tuple(names))
