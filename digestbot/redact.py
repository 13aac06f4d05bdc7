"""Credentials carried by URLs, hidden wherever a URL is shown.

A feed URL may carry its credentials: a user and password (``https://user:pw@host/feed``)
or a token in its query (``?token=…``, ``key=``, ``apikey=``, ``api_key=``,
``access_token=``, ``auth=``, ``sig=``, ``signature=``, ``secret=``, ``password=``, and
names ending in one of these such as ``private_token`` or ``X-Amz-Signature``; case does
not matter). ``redact_url`` shows such a URL as ``https://***@host/feed?token=***``; the
URL itself is still what is fetched; the database stores it redacted, with its SHA-256
(``store.feeds.stored_url``).
"""

from __future__ import annotations

import re

MASK = "***"
SECRET_PARAMS = frozenset(
    {
        "token",
        "key",
        "apikey",
        "api_key",
        "access_token",
        "auth",
        "sig",
        "signature",
        "secret",
        "password",
    }
)
# a URL in free text: a scheme, then everything up to white space or a quote
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`]+""")
# a query parameter outside a whole URL (a relative ``Location: /feed?token=…`` a library logs)
_PARAM = re.compile(r"""([?&])([A-Za-z0-9_.\-]+)=([^&#\s'"<>`]+)""")


def is_secret_param(name: str) -> bool:
    """A query parameter whose value is a credential (``token``, ``x-api-key``, ``sig``…)."""
    key = name.strip().lower().replace("-", "_")
    return key in SECRET_PARAMS or any(key.endswith("_" + p) for p in SECRET_PARAMS)


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={MASK}" if sep and is_secret_param(name) else part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the values of its credential parameters as ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = MASK + authority[authority.rindex("@") :]
    path, hash_sep, fragment = tail.partition("#")
    path, query_sep, query = path.partition("?")
    if query_sep:
        path += "?" + _redact_query(query)
    if hash_sep:
        path += "#" + fragment
    return f"{scheme}://{authority}{path}"


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted (a log line, an error message), and every
    credential parameter of a relative one."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "=" in text:
        text = _PARAM.sub(_redact_param, text)
    return text


def _redact_param(match: re.Match[str]) -> str:
    mark, name, _ = match.groups()
    return f"{mark}{name}={MASK}" if is_secret_param(name) else match.group(0)
