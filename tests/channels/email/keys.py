"""A throwaway RSA key for the DKIM tests, made in pure Python so the tests need neither the
openssl binary nor a key checked into the repository, and a DNS answer for dkimpy's
verifier (``dkim.verify(..., dnsfunc=...)``), so no test asks a real resolver."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p ** 0.5) + 1, 2))]


def _probably_prime(n: int, rng: random.Random, rounds: int = 24) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probably_prime(candidate, rng):
            return candidate


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "big")  # one spare byte keeps the sign bit clear
    while len(raw) > 1 and raw[0] == 0 and raw[1] < 0x80:
        raw = raw[1:]
    return b"\x02" + _der_length(len(raw)) + raw


def _der_seq(*items: bytes) -> bytes:
    body = b"".join(items)
    return b"\x30" + _der_length(len(body)) + body


@dataclass(frozen=True)
class RsaKey:
    private_pem: bytes  # PKCS#1 "RSA PRIVATE KEY", as openssl genrsa -traditional writes it
    public_der: bytes  # PKCS#1 RSAPublicKey, which a DKIM TXT record may carry in p=

    def write(self, path: Path) -> Path:
        path.write_bytes(self.private_pem)
        return path

    def txt_record(self) -> bytes:
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(self.public_der)

    def dns(self, selector: str, domain: str) -> Callable[..., bytes | None]:
        """A dnsfunc for dkim.verify that knows only ``<selector>._domainkey.<domain>``."""
        wanted = f"{selector}._domainkey.{domain}.".encode()

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            return self.txt_record() if name == wanted else None

        return lookup


def rsa_key(seed: int = 2027, bits: int = 1024) -> RsaKey:
    """A deterministic RSA key (1,024 bits: dkimpy's smallest accepted, and quick to make)."""
    rng = random.Random(seed)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e and (p * q).bit_length() == bits:
            break
    n, d = p * q, pow(e, -1, phi)
    der = _der_seq(*(_der_int(v) for v in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))))
    b64 = base64.b64encode(der).decode()
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) \
        + "\n-----END RSA PRIVATE KEY-----\n"
    return RsaKey(pem.encode(), _der_seq(_der_int(n), _der_int(e)))
