"""geri's gRPC protocol as both ends speak it: the generated stubs (`_pb`, from proto/geri/v1/),
the translation between messages and geri's types with the one status table used both ways
(`convert`), and the client (`client`) that the CLI and the peer provider use.

It sits below the providers, because a geri daemon on the LAN is itself a provider, and below
the daemon, which serves the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DaemonAddress:
    """Where a daemon listens (host:port or unix:/path), its pid when it is this machine's
    own (0 otherwise), and the token it wants, if any."""

    address: str
    pid: int = 0
    token: str | None = None
