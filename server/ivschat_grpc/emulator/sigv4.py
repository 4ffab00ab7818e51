"""SigV4 verification, as AWS's front end does it for a JSON service.

Written from AWS's published algorithm rather than by calling botocore's
signer, so that a bug in how the facade signs cannot hide behind the same bug
in how the endpoint checks.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, quote

from ivschat_grpc.core.outcomes import Outcome

ALGORITHM: Final = "AWS4-HMAC-SHA256"
# AWS refuses a request whose signing time is more than 15 minutes off.
MAX_SKEW: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Refusal(Exception):
    """Refusal is how AWS answers a request it will not authenticate."""

    status: int
    code: str
    message: str


def _refuse_signature(message: str) -> Refusal:
    return Refusal(403, Outcome.INVALID_SIGNATURE, message)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """SignedRequest is what verification needs of an HTTP request."""

    method: str
    raw_path: str
    headers: Mapping[str, str]
    body: bytes


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _parse_authorization(header: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise Refusal(400, Outcome.INCOMPLETE_SIGNATURE, f"Unsupported algorithm {algorithm!r}.")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
    if missing:
        raise Refusal(
            400,
            Outcome.INCOMPLETE_SIGNATURE,
            f"Authorization header requires {', '.join(missing)}.",
        )
    return parts["Credential"], parts["SignedHeaders"].split(";"), parts["Signature"]


def verify(
    request: SignedRequest,
    *,
    secrets: Mapping[str, str],
    region: str,
    service: str,
    now: datetime | None = None,
) -> str:
    """Return the access key id that signed request, or raise Refusal."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    authorization = headers.get("authorization")
    if not authorization:
        raise Refusal(403, Outcome.MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")
    credential, signed_headers, signature = _parse_authorization(authorization)
    scope_parts = credential.split("/")
    if len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
        raise Refusal(400, Outcome.INCOMPLETE_SIGNATURE, "Credential is malformed.")
    access_key, date, scope_region, scope_service, _ = scope_parts
    if access_key not in secrets:
        raise Refusal(
            403,
            Outcome.UNRECOGNIZED_CLIENT,
            "The security token included in the request is invalid.",
        )
    if scope_service != service:
        raise _refuse_signature(f"Credential should be scoped to correct service: '{service}'.")
    if scope_region != region:
        raise _refuse_signature("Credential should be scoped to a valid region.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Refusal(
            400, Outcome.INCOMPLETE_SIGNATURE, "X-Amz-Date is missing or malformed."
        ) from None
    if not amz_date.startswith(date):
        raise _refuse_signature("Date in Credential scope does not match X-Amz-Date.")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_SKEW:
        raise _refuse_signature("Signature expired: the request time is too far from now.")
    if "host" not in signed_headers or any(h not in headers for h in signed_headers):
        raise _refuse_signature("Signed headers must include host and be present.")

    # The path as sent is encoded once; AWS's canonical URI, for every service
    # but S3, encodes each segment again: TagResource's %3A is signed as %253A.
    path, _, query = request.raw_path.partition("?")
    canonical_headers = "".join(
        f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [
            request.method,
            quote(path or "/", safe="/~"),
            _canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{date}/{scope_region}/{scope_service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secrets[access_key]}".encode(), date)
    for part in (scope_region, scope_service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise _refuse_signature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return access_key
