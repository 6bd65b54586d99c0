"""A throwaway certificate authority for tests, made with ``cryptography``: it issues
server certificates for 127.0.0.1 / localhost (so clients verify TLS for real, against
``ca_file``) and RSA signing certificates (such as the one SNS signs its messages with)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_NOW = dt.datetime.now(dt.timezone.utc)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: object) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())


@dataclass
class Issued:
    """A certificate and its key, as PEM files and objects."""

    cert_file: Path
    key_file: Path
    cert: x509.Certificate
    key: object

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


class TestCA:
    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path, name: str = "Tamtam Test CA"):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(_NOW - dt.timedelta(days=1)).not_valid_after(_NOW + dt.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = folder / "test-ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _issue(self, stem: str, key: object, builder: x509.CertificateBuilder) -> Issued:
        cert = builder.issuer_name(self.cert.subject).serial_number(x509.random_serial_number()).public_key(
            key.public_key()).sign(self.key, hashes.SHA256())  # type: ignore[attr-defined]
        cert_file, key_file = self.folder / f"{stem}.pem", self.folder / f"{stem}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return Issued(cert_file, key_file, cert, key)

    def server(self, stem: str = "server", hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Issued:
        """A TLS server certificate for ``hosts``."""
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        builder = (x509.CertificateBuilder().subject_name(_name(hosts[0]))
                   .not_valid_before(_NOW - dt.timedelta(days=1)).not_valid_after(_NOW + dt.timedelta(days=2))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return self._issue(stem, ec.generate_private_key(ec.SECP256R1()), builder)

    def signer(self, stem: str = "signer", common: str = "sns.amazonaws.com", *, around: dt.datetime | None = None,
               not_after: dt.datetime | None = None) -> Issued:
        """An RSA certificate for signing documents (an SNS signing certificate), valid from
        a day before ``around`` (a test's fixed clock; now by default) to ``not_after``."""
        around = around or _NOW
        builder = (x509.CertificateBuilder().subject_name(_name(common))
                   .not_valid_before(around - dt.timedelta(days=1))
                   .not_valid_after(not_after or around + dt.timedelta(days=2)))
        return self._issue(stem, rsa.generate_private_key(public_exponent=65537, key_size=2048), builder)
