"""RFC 3161 timestamps over the snapshot signature: requesting one from a TSA and checking it.

``rfc3161-client`` and ``httpx`` are imported inside the functions: verification pays for them
only when a snapshot carries a token, and sealing only when ``[signing].tsa_url`` is set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from cryptography import x509

from collector.errors import CollectorError

__all__ = ["TimestampError", "certificate_problem", "check_token", "http_timestamper"]

_SHA256 = "2.16.840.1.101.3.4.2.1"
_SHA512 = "2.16.840.1.101.3.4.2.3"


class TimestampError(CollectorError):
    """A timestamp could not be obtained, or a token does not cover the signature."""


def http_timestamper(url: str, timeout: float = 30.0, attempts: int = 4) -> Callable[[bytes], bytes]:
    """A function that asks the TSA at ``url`` for a token over the signature bytes it is given."""

    def stamp(signature: bytes) -> bytes:
        import httpx
        from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

        request = (TimestampRequestBuilder().data(signature)
                   .hash_algorithm(HashAlgorithm.SHA256).cert_request(cert_request=True).build())
        body = request.as_bytes()
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.5 * 2 ** attempt, 8))
            try:
                response = httpx.post(url, content=body, timeout=timeout,
                                      headers={"Content-Type": "application/timestamp-query"})
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in (429, 500, 502, 503, 504):
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise TimestampError(f"[signing].tsa_url: the TSA answered HTTP {response.status_code}")
            check_token(response.content, signature, (), nonce=request.nonce)
            return response.content
        raise TimestampError(f"[signing].tsa_url: no timestamp after {attempts} attempts ({problem})")

    return stamp


def check_token(token: bytes, signature: bytes, roots: Sequence[bytes],
                nonce: int | None = None) -> str:
    """Check that ``token`` is a granted RFC 3161 timestamp over ``signature``; describe it.

    With ``roots`` (PEM or DER CA certificates of the TSA) the token's signature and certificate
    chain are verified against them; without, only that the token is granted and covers the
    signature (the time it claims is then the TSA's word, unchecked).
    """
    from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except Exception as exc:
        raise TimestampError(f"is not an RFC 3161 TimeStampResp: {exc}") from None
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA did not grant the timestamp (status {response.status})")
    info = response.tst_info
    algorithm = info.message_imprint.hash_algorithm.dotted_string
    if algorithm == _SHA256:
        expected = hashlib.sha256(signature).digest()
    elif algorithm == _SHA512:
        expected = hashlib.sha512(signature).digest()
    else:
        raise TimestampError(f"uses hash algorithm {algorithm}, not SHA-256 or SHA-512")
    if info.message_imprint.message != expected:
        raise TimestampError("does not cover SHA256SUMS.ed25519 (message imprint differs)")
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("nonce does not match the request")
    when = info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not roots:
        return f"{when} (TSA not checked: pass --tsa-ca to verify who signed the token)"
    builder = VerifierBuilder()
    for data in roots:
        builder = builder.add_root_certificate(_load_cert(data))
    try:
        builder.build().verify_message(response, signature)
    except (VerificationError, ValueError) as exc:
        raise TimestampError(f"the token's signature does not verify: {exc}") from None
    return when


def certificate_problem(data: bytes) -> str | None:
    """Why ``data`` is not a PEM or DER certificate, or None when it is one."""
    try:
        _load_cert(data)
    except ValueError as exc:
        return f"is not a PEM or DER X.509 certificate ({exc})"
    return None


def _load_cert(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)
