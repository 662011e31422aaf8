"""Self-signed TLS material for the emulators (ARM, Graph, JumpCloud) and the tests' stand-ins.

One certificate doubles as its own CA (``BasicConstraints(ca=True)``), so clients only need
``connection_verify=<ca.pem>`` / ``REQUESTS_CA_BUNDLE=<ca.pem>`` / ``SSL_CERT_FILE=<ca.pem>``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # server certificate == CA certificate
    key: Path

    @property
    def ca(self) -> Path:
        return self.cert


def generate(
    state_dir: Path, ips: tuple[str, ...] = ("127.0.0.1",), *, common_name: str = "emulator (test only)"
) -> TlsFiles:
    """Write ``ca.pem`` (cert, also the trust anchor) and ``key.pem`` into ``state_dir``.

    SAN: ``DNS:localhost`` plus ``IP:`` for every address in ``ips``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [*(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    cert_path = state_dir / "ca.pem"
    key_path = state_dir / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert=cert_path, key=key_path)


def existing(state_dir: Path) -> TlsFiles | None:
    """The certificate and key an earlier run left in ``state_dir`` (a restart keeps its clients' trust anchor)."""
    files = TlsFiles(cert=state_dir / "ca.pem", key=state_dir / "key.pem")
    return files if files.cert.exists() and files.key.exists() else None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.cert), str(files.key))
    return ctx
