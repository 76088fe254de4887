# SPDX-License-Identifier: MIT
"""Connection options, as libpartreg and the CLI take them.

The broker is a URL, ``mqtt://host:port`` or ``mqtts://host:port`` (also
``tcp://`` and ``ssl://``, as partregd takes them; the port defaults to 1883
and 8883). TLS takes a CA file (default: the system's CAs), a client
certificate and key; credentials are a user name and a password, or a file
whose first line is the password (never on a command line). With a user
name, replies come under ``<prefix>/reply/<user>/<client id>``, where the
shipped ACL (compose/mosquitto/acl) lets only that user read them.

Unset options come from the environment the CLI and partregd read
(``partreg(1)``): PARTREG_BROKER, PARTREG_PREFIX, PARTREG_USERNAME,
PARTREG_PASSWORD_FILE, PARTREG_CAFILE, PARTREG_CERT, PARTREG_KEY,
PARTREG_MQTT_VERSION, PARTREG_TIMEOUT, and the token from PARTREG_TOKEN or
PARTREG_TOKEN_FILE (an explicit token_file wins over PARTREG_TOKEN, which
wins over PARTREG_TOKEN_FILE, as in the CLI).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import TypedDict, Unpack

from .errors import InvalidInput

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
DEFAULT_PREFIX = "partreg/v1"
DEFAULT_TIMEOUT = 10.0
DEFAULT_KEEPALIVE = 30

_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


def read_first_line(path: str, what: str) -> str:
    """The first line of a file (a password or a token), without its line
    end; InvalidInput when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except OSError as e:
        raise InvalidInput("invalid_field", f"cannot read the {what} file {path}: {e}") from None
    line = line.rstrip("\r\n")
    if not line:
        raise InvalidInput("invalid_field", f"the {what} file {path} has an empty first line")
    return line


@dataclasses.dataclass(frozen=True)
class Broker:
    """A parsed broker URL."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Broker:
        u = urllib.parse.urlsplit(url)
        scheme = u.scheme.lower()
        if scheme not in _SCHEMES or not u.hostname or u.path not in ("", "/") or u.query:
            raise InvalidInput(
                "invalid_field",
                f"broker URL must be mqtt://host:port or mqtts://host:port, not {url!r}",
            )
        try:
            port = u.port
        except ValueError:
            raise InvalidInput("invalid_field", f"bad port in broker URL {url!r}") from None
        tls = _SCHEMES[scheme]
        return cls(u.hostname, port if port is not None else (8883 if tls else 1883), tls)


class ConnectArgs(TypedDict, total=False):
    """The keyword options of :class:`partreg.Client`,
    :class:`partreg.AsyncClient` and :meth:`Options.resolve`; each one not
    given comes from the PARTREG_* environment (unless ``use_env`` is
    False), then the defaults."""

    prefix: str | None
    client_id: str | None
    username: str | None
    password: str | None
    password_file: str | None
    cafile: str | None
    certfile: str | None
    keyfile: str | None
    mqtt_version: int | str | None
    token: str | None
    token_file: str | None
    timeout: float | None
    keepalive: int | None
    use_env: bool


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything a client needs to connect; build it with :meth:`resolve`."""

    broker: str = DEFAULT_BROKER
    prefix: str = DEFAULT_PREFIX
    client_id: str | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    mqtt_version: int = 5
    token: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    keepalive: int = DEFAULT_KEEPALIVE

    @classmethod
    def resolve(
        cls,
        broker: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **kw: Unpack[ConnectArgs],
    ) -> Options:
        """Options from the arguments, then (with use_env) the PARTREG_*
        environment, then the defaults. Reads the password and token files
        now; raises InvalidInput for a bad URL, version or file."""
        use_env = kw.get("use_env", True)
        env: Mapping[str, str] = (environ if environ is not None else os.environ) if use_env else {}
        password, token, timeout = kw.get("password"), kw.get("token"), kw.get("timeout")
        keepalive = kw.get("keepalive")

        def pick(value: str | None, name: str) -> str | None:
            if value is not None:
                return value
            v = env.get(name)
            return v if v else None

        broker = pick(broker, "PARTREG_BROKER") or DEFAULT_BROKER
        Broker.parse(broker)
        if password is None:
            pf = pick(kw.get("password_file"), "PARTREG_PASSWORD_FILE")
            if pf is not None:
                password = read_first_line(pf, "password")
        if token is None:
            # A token_file argument wins over PARTREG_TOKEN, which wins over
            # PARTREG_TOKEN_FILE (partreg(1): Tokens).
            if (token_file := kw.get("token_file")) is not None:
                token = read_first_line(token_file, "token")
            elif env.get("PARTREG_TOKEN"):
                token = env["PARTREG_TOKEN"]
            elif env.get("PARTREG_TOKEN_FILE"):
                token = read_first_line(env["PARTREG_TOKEN_FILE"], "token")
        version = kw.get("mqtt_version")
        if version is None:
            version = pick(None, "PARTREG_MQTT_VERSION")
        if version is None or str(version) == "5":
            v = 5
        elif str(version) in ("3.1.1", "4"):
            v = 4
        else:
            raise InvalidInput("invalid_field", f"mqtt_version must be 5 or 3.1.1, not {version!r}")
        if timeout is None:
            t = pick(None, "PARTREG_TIMEOUT")
            try:
                timeout = float(t) if t is not None else DEFAULT_TIMEOUT
            except ValueError:
                raise InvalidInput(
                    "invalid_field", f"PARTREG_TIMEOUT {t!r} is not a number"
                ) from None
        if not timeout > 0:
            raise InvalidInput("invalid_field", f"timeout must be > 0, not {timeout!r}")
        return cls(
            broker=broker,
            prefix=(pick(kw.get("prefix"), "PARTREG_PREFIX") or DEFAULT_PREFIX).rstrip("/"),
            client_id=kw.get("client_id"),
            username=pick(kw.get("username"), "PARTREG_USERNAME"),
            password=password,
            cafile=pick(kw.get("cafile"), "PARTREG_CAFILE"),
            certfile=pick(kw.get("certfile"), "PARTREG_CERT"),
            keyfile=pick(kw.get("keyfile"), "PARTREG_KEY"),
            mqtt_version=v,
            token=token,
            timeout=float(timeout),
            keepalive=DEFAULT_KEEPALIVE if keepalive is None else keepalive,
        )

    def replace(self, **changes: object) -> Options:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def endpoint(self) -> Broker:
        return Broker.parse(self.broker)

    def new_client_id(self) -> str:
        """The client id to use: the given one, or partreg-<random>, as
        libpartreg makes it."""
        return self.client_id or f"partreg-{secrets.token_hex(4)}"

    def reply_topic(self, client_id: str) -> str:
        if self.username is not None:
            return f"{self.prefix}/reply/{self.username}/{client_id}"
        return f"{self.prefix}/reply/{client_id}"

    def tls_context(self) -> ssl.SSLContext | None:
        """For mqtts://: verify the broker (its certificate and name) with the
        CA file, or the system's CAs; present the client certificate if set."""
        if not self.endpoint.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.cafile)
            if self.certfile is not None:
                ctx.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as e:
            raise InvalidInput("invalid_field", f"TLS files: {e}") from None
        return ctx
