"""What a person should change when a client command cannot connect because of TLS.

gRPC answers every failed connection UNAVAILABLE, which the commands map to
"retry later"; but a retry cannot mend a TLS mismatch. The TLS cases are told
apart here: by the handshake error gRPC reports, and, where it reports only
"Socket closed" (a plaintext client at a TLS server), by trying a TLS
handshake with the server ourselves.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from typing import Final, TextIO

import grpc

from ivschat_grpc.client import Connection

# How long the TLS probe waits: it runs only after a call failed already.
_PROBE_TIMEOUT_S: Final = 3.0
# How long it waits, once in, for a refusal of a client without a certificate.
_ALERT_WAIT_S: Final = 1.0

_SPEAKS_TLS: Final = "the server speaks TLS: pass --tls-ca FILE, the CA that signed its certificate"
_WANTS_CLIENT_CERT: Final = (
    "the server asks for a client certificate (mTLS): pass --tls-cert and --tls-key"
)
_SPEAKS_MTLS: Final = (
    "the server speaks TLS and asks for a client certificate (mTLS): pass --tls-ca, "
    "--tls-cert and --tls-key"
)

# Substrings of gRPC core's handshake errors (grpcio 1.85, BoringSSL), and the fix each calls for.
_HANDSHAKE_HINTS: Final = (
    (
        "CERTIFICATE_VERIFY_FAILED",
        "the server's certificate is not signed by --tls-ca: pass the CA that signed it",
    ),
    (
        "Hostname Verification Check failed",
        "the server's certificate does not name {host}: pass --tls-server-name with a name "
        "on its certificate",
    ),
    (
        "WRONG_VERSION_NUMBER",
        "the server speaks plaintext, not TLS: drop --tls-ca, --tls-cert and --tls-key "
        "(or start the server with --tls-cert and --tls-key)",
    ),
    ("CERTIFICATE_REQUIRED", _WANTS_CLIENT_CERT),
)


def _host_port(target: str) -> tuple[str, int] | None:
    """target's host and port when it is host:port (or [v6]:port, dns:///host:port)."""
    target = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return None
    return host.removeprefix("[").removesuffix("]"), int(port)


class Peer(enum.Enum):
    """Peer is what a TLS handshake of our own learns of a server."""

    NOT_TLS = "it does not complete a TLS handshake, or is not there"
    TLS = "it speaks TLS"
    WANTS_CLIENT_CERT = "it speaks TLS, and refuses a client without a certificate (mTLS)"


async def tls_peer(host: str, port: int) -> Peer:
    """Try a TLS handshake with host:port, its certificate unchecked, and no client certificate.

    Nothing is sent after the handshake, so the server sees a connection
    that closes: no call, no token. Under TLS 1.3 a server that wants a
    client certificate says so only after the handshake, so its first bytes
    are read too.
    """
    context = ssl.create_default_context()
    # Only whether it speaks TLS at all is asked; the certificate is gRPC's to check.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), _PROBE_TIMEOUT_S
        )
    except (OSError, TimeoutError):  # ssl.SSLError is an OSError: not TLS, or not there
        return Peer.NOT_TLS
    try:
        # A gRPC server sends its HTTP/2 settings at once; one that wants a client
        # certificate sends its alert instead, which asyncio reads as the end.
        first = await asyncio.wait_for(reader.read(1), _ALERT_WAIT_S)
    except ssl.SSLError:
        first = b""  # the alert, as an error
    except (OSError, TimeoutError):
        first = None  # a TLS server that said nothing more: TLS, as the handshake showed
    # Aborted, not closed: a TLS close waits (30 s) for the server's own close.
    writer.transport.abort()
    return Peer.WANTS_CLIENT_CERT if first == b"" else Peer.TLS


async def tls_hint(connection: Connection, code: grpc.StatusCode, message: str) -> str | None:
    """What to fix when a call through connection failed (code, message) for TLS; else None."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    where = _host_port(connection.target)
    # The name checked against the certificate: --tls-server-name's, else the target's host.
    host = connection.server_name or (where[0] if where else connection.target)
    for marker, hint in _HANDSHAKE_HINTS:
        if marker in message:
            return hint.format(host=host)
    if where is None:
        return None
    plaintext = connection.tls_ca is None and connection.client_cert is None
    if not plaintext and connection.client_cert is not None:
        return None  # a client that has all the flags: what else failed is not for a hint
    peer = await tls_peer(*where)
    if peer is Peer.WANTS_CLIENT_CERT:
        return _SPEAKS_MTLS if plaintext else _WANTS_CLIENT_CERT
    if plaintext and peer is Peer.TLS:
        return _SPEAKS_TLS
    return None


async def told(connection: Connection, code: grpc.StatusCode, message: str, err: TextIO) -> bool:
    """Whether the failure was a TLS mismatch, which is then told on err in one line."""
    hint = await tls_hint(connection, code, message)
    if hint is None:
        return False
    err.write(f"ivschat-grpc: cannot connect to {connection.target}: {hint}\n")
    return True
