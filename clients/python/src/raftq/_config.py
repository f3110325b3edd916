"""A client's connection settings, shared by `raftq.Client` and
`raftq.aio.Client`: the servers, the deadline, the token, TLS and the
channel options. Pure (it reads the PEM files it is given, nothing else)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import grpc

#: Largest gRPC message sent or received: 64 MiB. A Receive of many 1 MiB
#: messages is larger than gRPC's default 4 MiB.
MAX_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024
#: What `Client.from_env` uses when RAFTQ_SERVERS is unset (as the CLI does).
DEFAULT_SERVERS = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"

PathOrPem = Union[str, bytes, "os.PathLike[str]"]


@dataclass
class Settings:
    """What both clients make their channels and calls with."""

    servers: List[str]
    #: Each call's overall deadline in seconds, retries included.
    timeout: float
    #: Sent with every call (the bearer token), or empty.
    metadata: Tuple[Tuple[str, str], ...]
    #: `grpc.ChannelCredentials` when TLS is on, else None.
    credentials: Any
    #: Channel options (message size limits, the TLS name override).
    options: List[Tuple[str, Any]]


def settings(
    servers: Union[str, Sequence[str]],
    token: Optional[str] = None,
    tls_ca: Optional[PathOrPem] = None,
    tls_cert: Optional[PathOrPem] = None,
    tls_key: Optional[PathOrPem] = None,
    timeout: float = 10.0,
    tls: Optional[bool] = None,
    tls_server_name: Optional[str] = None,
) -> Settings:
    """Checks a client's constructor arguments and resolves them (see
    `raftq.Client` for their meaning)."""
    parsed = parse_servers(servers)
    if timeout is None or timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
    token = (token or "").strip()
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together")
    use_tls = tls if tls is not None else any(x is not None for x in (tls_ca, tls_cert, tls_key))
    credentials = None
    if use_tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_pem(tls_ca),
            private_key=read_pem(tls_key),
            certificate_chain=read_pem(tls_cert),
        )
    elif tls_ca is not None or tls_cert is not None:
        raise ValueError("tls=False contradicts tls_ca / tls_cert")
    options: List[Tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ]
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return Settings(parsed, float(timeout), metadata, credentials, options)


def env_kwargs(**overrides: Any) -> Dict[str, Any]:
    """A client's keyword arguments from the environment, as the raftq CLI
    reads it: `RAFTQ_SERVERS` (default 127.0.0.1:7101..7103), `RAFTQ_TOKEN`
    (or `RAFTQ_TOKEN_FILE`, a file whose first line is the token),
    `RAFTQ_TLS_CA`, `RAFTQ_TLS_CERT`, `RAFTQ_TLS_KEY`; `overrides` win."""
    env = os.environ
    token = env.get("RAFTQ_TOKEN") or None
    if not token and env.get("RAFTQ_TOKEN_FILE"):
        with open(env["RAFTQ_TOKEN_FILE"], encoding="utf-8") as f:
            token = (f.readline().strip()) or None
    kwargs: Dict[str, Any] = {
        "servers": env.get("RAFTQ_SERVERS") or DEFAULT_SERVERS,
        "token": token,
        "tls_ca": env.get("RAFTQ_TLS_CA") or None,
        "tls_cert": env.get("RAFTQ_TLS_CERT") or None,
        "tls_key": env.get("RAFTQ_TLS_KEY") or None,
    }
    kwargs.update(overrides)
    return kwargs


def parse_servers(servers: Union[str, Sequence[str]]) -> List[str]:
    """`host:port` addresses from a list or a comma-separated string, blanks
    dropped, duplicates removed (first kept)."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    parsed = [s.strip() for s in items if s and s.strip()]
    if not parsed:
        raise ValueError("no servers given: pass host:port addresses")
    for s in parsed:
        host, sep, port = s.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"server {s!r} is not host:port")
    return list(dict.fromkeys(parsed))


def read_pem(value: Optional[PathOrPem]) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    with open(value, "rb") as f:
        return f.read()
