"""Who is asking: the origins allowed to embed the chat, the proxies whose forwarding headers are believed (both
checked once when the app is built), a request's real client address, and the key its rate limit is counted under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from tr_qa.errors import InputError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def validate_origin(origin: str) -> str:
    """Normalise ``scheme://host[:port]``; InputError naming the value if it has a path, query or other scheme."""
    raw = origin.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise InputError(f"allowed origin {origin!r} is not a valid URL origin (scheme://host[:port])") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or raw.endswith("?")
        or raw.endswith("#")
        or any(c.isspace() for c in raw)
    ):
        raise InputError(
            f"allowed origin {origin!r} must look like https://example.org or http://host:8080 (no path, no '*')"
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def parse_origins(values: Iterable[str]) -> tuple[str, ...]:
    """Validate and de-duplicate origins (each value may hold several, comma-separated)."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                origin = validate_origin(item)
                if origin not in out:
                    out.append(origin)
    return tuple(out)


def parse_proxies(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Trusted proxy addresses or networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``); InputError naming a bad one."""
    out: list[IPNetwork] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item == "*":
                raise InputError(
                    "forwarded-allow-ips '*' would let every client choose the address its rate limit counts; "
                    "give the proxy's address or network, e.g. 127.0.0.1 or 10.0.0.0/8"
                )
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise InputError(
                    f"forwarded-allow-ips entry {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None
            if network not in out:
                out.append(network)
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a forwarding header entry (``1.2.3.4``, ``1.2.3.4:5``, ``[::1]:5``), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def real_client(peer: str, forwarded_for: str, trusted: tuple[IPNetwork, ...]) -> str:
    """The client address: the peer, unless it is a trusted proxy; then the nearest untrusted X-Forwarded-For hop.

    Proxies append the address they saw, so the rightmost entries are the trustworthy ones; anything to the left
    of the first untrusted hop was written by the client and is ignored.
    """
    peer_ip = _address(peer)
    if peer_ip is None or not any(peer_ip in net for net in trusted):
        return peer
    client = peer_ip
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        hop_ip = _address(hop)
        if hop_ip is None:
            break
        client = hop_ip
        if not any(hop_ip in net for net in trusted):
            break
    return str(client)


def rate_key(host: str) -> str:
    """Rate-limit key for a client address: the address, or its /64 for IPv6 (one subscriber holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
