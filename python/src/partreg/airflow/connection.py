# SPDX-License-Identifier: MIT
"""An Airflow connection of type ``partreg``, read into client options.

Pure: it takes the connection's fields, not an Airflow object, so the rules
are tested without Airflow and the same in a worker and in the triggerer.

======================  ==================================================
field                   meaning
======================  ==================================================
host                    the broker's host name, or its URL
                        (``mqtt://host:port``, ``mqtts://host:port``);
                        127.0.0.1 when empty
port                    the broker's port (1883; 8883 with TLS)
login, password         the MQTT user name and password; without a login
                        the password is the partreg token (a source's or
                        a provider's) instead
extra ``token``         the partreg token (wins over the password);
                        ``token_file``: a file whose first line is it
extra ``tls``           true: TLS (also an ``mqtts://`` host, or any of
                        the files below); ``cafile`` (default: the
                        system's CAs), ``certfile`` and ``keyfile`` (a
                        client certificate): paths on the worker and the
                        triggerer
extra ``prefix``        the topic prefix (``partreg/v1``)
extra ``mqtt_version``  ``5`` (default) or ``3.1.1``
extra ``timeout``       seconds to connect and for each reply (10)
extra ``keepalive``     the MQTT keepalive in seconds (30)
======================  ==================================================

An unknown extra key is refused, so that a misspelt ``ca_file`` fails loudly
instead of leaving the broker unverified by the CA meant. Keys the Airflow UI
prefixes (``extra__partreg__cafile``) are read as the plain ones. The
PARTREG_* environment is not read: the connection says everything, so a
worker and the triggerer connect alike.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .._options import Options, read_first_line
from ..errors import InvalidInput

CONN_TYPE = "partreg"
DEFAULT_CONN_ID = "partreg_default"

#: The extra keys a connection may carry.
EXTRA_KEYS = frozenset(
    {
        "token",
        "token_file",
        "tls",
        "cafile",
        "certfile",
        "keyfile",
        "prefix",
        "mqtt_version",
        "timeout",
        "keepalive",
    }
)
_UI_PREFIX = f"extra__{CONN_TYPE}__"


def _extra_dict(extra: Mapping[str, Any] | str | None, conn_id: str) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError as e:
            raise InvalidInput(
                "invalid_field", f"connection {conn_id}: extra is not JSON: {e}"
            ) from None
    if not isinstance(extra, Mapping):
        raise InvalidInput("invalid_field", f"connection {conn_id}: extra must be a JSON object")
    out: dict[str, Any] = {}
    for k, v in extra.items():
        key = k.removeprefix(_UI_PREFIX) if isinstance(k, str) else k
        if key not in EXTRA_KEYS:
            raise InvalidInput(
                "invalid_field",
                f"connection {conn_id}: unknown extra key {k!r}; "
                f"known: {', '.join(sorted(EXTRA_KEYS))}",
            )
        # The UI stores an emptied field as "" or null: not given.
        if v is not None and v != "":
            out[key] = v
    return out


def _str(extra: dict[str, Any], key: str, conn_id: str) -> str | None:
    v = extra.get(key)
    if v is None or isinstance(v, str):
        return v
    raise InvalidInput("invalid_field", f"connection {conn_id}: extra {key} must be a string")


def _bool(extra: dict[str, Any], key: str, conn_id: str) -> bool:
    v = extra.get(key, False)
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise InvalidInput("invalid_field", f"connection {conn_id}: extra {key} must be true or false")


def _number(extra: dict[str, Any], key: str, conn_id: str) -> float | None:
    v = extra.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        v = "bool"  # refused below: true is not a number of seconds
    try:
        n = float(v)
    except (TypeError, ValueError):
        raise InvalidInput(
            "invalid_field", f"connection {conn_id}: extra {key} must be a number, not {v!r}"
        ) from None
    if not n > 0:
        raise InvalidInput("invalid_field", f"connection {conn_id}: extra {key} must be > 0")
    return n


def broker_url(host: str | None, port: int | None, tls: bool, conn_id: str) -> str:
    """The broker URL of a connection's host and port (see the module)."""
    host = (host or "").strip()
    if "://" in host:
        u = urllib.parse.urlsplit(host)
        scheme = u.scheme.lower()
        secure = scheme in ("mqtts", "ssl")
        if port is not None and u.port is not None and u.port != port:
            raise InvalidInput(
                "invalid_field",
                f"connection {conn_id}: the host URL says port {u.port}, the port field {port}",
            )
        if tls and not secure:
            raise InvalidInput(
                "invalid_field",
                f"connection {conn_id}: extra asks for TLS but the host URL is {scheme}://; "
                "use mqtts://",
            )
        netloc = u.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        p = port if port is not None else u.port
        return f"{scheme}://{netloc}" + (f":{p}" if p is not None else "")
    if not host:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    scheme = "mqtts" if tls else "mqtt"
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def options_from_fields(
    *,
    host: str | None = None,
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    extra: Mapping[str, Any] | str | None = None,
    conn_id: str = DEFAULT_CONN_ID,
) -> Options:
    """Client options from a ``partreg`` connection's fields (see the
    module). Raises :class:`~partreg.errors.InvalidInput` (``invalid_field``)
    for anything that does not make a connection, naming ``conn_id``."""
    x = _extra_dict(extra, conn_id)
    cafile = _str(x, "cafile", conn_id)
    certfile = _str(x, "certfile", conn_id)
    keyfile = _str(x, "keyfile", conn_id)
    if keyfile is not None and certfile is None:
        raise InvalidInput(
            "invalid_field", f"connection {conn_id}: extra keyfile needs certfile too"
        )
    tls = _bool(x, "tls", conn_id) or any(f is not None for f in (cafile, certfile))
    url = broker_url(host, port, tls, conn_id)

    token = _str(x, "token", conn_id)
    token_file = _str(x, "token_file", conn_id)
    if token is None and token_file is not None:
        token = read_first_line(token_file, "token")
    login = login or None
    password = password or None
    if token is None and login is None:
        token = password  # no MQTT user: the password field holds the token
    if login is None:
        password = None

    version = x.get("mqtt_version")
    keepalive = _number(x, "keepalive", conn_id)
    try:
        return Options.resolve(
            url,
            prefix=_str(x, "prefix", conn_id),
            username=login,
            password=password,
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            mqtt_version=None if version is None else str(version),
            token=token,
            timeout=_number(x, "timeout", conn_id),
            keepalive=None if keepalive is None else int(keepalive),
            use_env=False,
        )
    except InvalidInput as e:
        raise InvalidInput(e.code, f"connection {conn_id}: {e.message}") from None


def options_from_connection(conn: Any) -> Options:
    """:func:`options_from_fields` of an Airflow ``Connection`` (anything with
    its attributes: ``conn_id``, ``host``, ``port``, ``login``,
    ``password``, ``extra``)."""
    return options_from_fields(
        host=getattr(conn, "host", None),
        port=getattr(conn, "port", None),
        login=getattr(conn, "login", None),
        password=getattr(conn, "password", None),
        extra=getattr(conn, "extra", None),
        conn_id=getattr(conn, "conn_id", None) or DEFAULT_CONN_ID,
    )
