"""Who may call: TLS or mTLS on the wire, then bearer tokens or client certificates.

A caller is let in if it presents an accepted bearer token
(`authorization: Bearer <token>`), or a client certificate whose name is on
the allow-list (or, with a client CA and no allow-list, any certificate that
CA signed). No credentials at all answer UNAUTHENTICATED; credentials that
are not accepted answer PERMISSION_DENIED. Health checks need none, so probes
work. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Final

import grpc

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import HEALTH_PREFIX, Enter, GatingInterceptor, Leave, hold_nothing

_BEARER: Final = "bearer "
_IDENTITY_KEYS: Final = ("x509_common_name", "x509_subject_alternative_name")


def server_credentials(cert: bytes, key: bytes, client_ca: bytes | None) -> grpc.ServerCredentials:
    """TLS credentials; with client_ca, every client must show a certificate it signed."""
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


UNAUTHENTICATED: Final = errors.build(errors.Refused.CALLER_UNAUTHENTICATED)
DENIED: Final = errors.build(errors.Refused.CALLER_DENIED)


class AuthInterceptor(GatingInterceptor):
    """AuthInterceptor admits callers with an accepted token or client certificate."""

    def __init__(self, tokens: Sequence[str], allowed_clients: Sequence[str], mtls: bool) -> None:
        self._tokens = tuple(t.encode() for t in tokens)
        self._allowed = frozenset(allowed_clients)
        self._mtls = mtls

    def _token_ok(self, presented: bytes) -> bool:
        # Compare against every token, so timing says nothing about which matched.
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(presented, token)
        return ok

    def verdict(self, context: grpc.aio.ServicerContext[Any, Any]) -> errors.Failure | None:
        """None if the caller may proceed, else the failure to answer."""
        header = next(
            (v for k, v in context.invocation_metadata() or () if k == "authorization"), None
        )
        identities: set[str] = set()
        if self._mtls:
            auth = context.auth_context()
            for key in _IDENTITY_KEYS:
                identities |= {v.decode(errors="replace") for v in auth.get(key, ())}
        if header is None and not identities:
            return UNAUTHENTICATED
        if header is not None:
            text = header if isinstance(header, str) else header.decode(errors="replace")
            if text.lower().startswith(_BEARER) and self._token_ok(text[len(_BEARER) :].encode()):
                return None
        if identities and (not self._allowed or identities & self._allowed):
            return None
        return DENIED

    def covers(self, method: str) -> bool:
        return not method.startswith(HEALTH_PREFIX)

    def gate(self, method: str) -> tuple[Enter, Leave]:
        return self._admit, hold_nothing

    def wrap_other(self, method: str, handler: Any) -> Any:
        # No such method is served today; refuse rather than pass one unchecked.
        async def refuse(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served")

        return grpc.unary_unary_rpc_method_handler(refuse)

    async def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        failure = self.verdict(context)
        if failure is not None:
            await errors.abort(context, failure)
