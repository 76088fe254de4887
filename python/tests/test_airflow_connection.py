# SPDX-License-Identifier: MIT
"""partreg.airflow.connection: a ``partreg`` connection's fields read into
client options. Pure, so these run without Airflow."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import partreg
from partreg.airflow.connection import EXTRA_KEYS, options_from_connection, options_from_fields


def opts(**fields: Any) -> partreg.Options:
    return options_from_fields(conn_id="c", **fields)


def test_package_imports_no_airflow() -> None:
    """partreg.airflow and its connection module stay importable without
    Airflow (provider discovery imports the package early)."""
    import partreg.airflow

    assert "partreg.airflow.connection" in sys.modules
    assert "PartregHook" in partreg.airflow.__all__


@pytest.mark.parametrize(
    ("fields", "broker", "port"),
    [
        ({}, "mqtt://127.0.0.1", 1883),
        ({"host": ""}, "mqtt://127.0.0.1", 1883),
        ({"host": "mq.example.org"}, "mqtt://mq.example.org", 1883),
        ({"host": "mq.example.org", "port": 1999}, "mqtt://mq.example.org:1999", 1999),
        ({"host": " mq.example.org "}, "mqtt://mq.example.org", 1883),
        ({"host": "::1", "port": 1883}, "mqtt://[::1]:1883", 1883),
        ({"host": "mqtt://mq:1884"}, "mqtt://mq:1884", 1884),
        ({"host": "mqtt://mq", "port": 1885}, "mqtt://mq:1885", 1885),
        ({"host": "mqtts://mq"}, "mqtts://mq", 8883),
        ({"host": "ssl://mq:8884"}, "ssl://mq:8884", 8884),
        ({"host": "mq", "extra": {"tls": True}}, "mqtts://mq", 8883),
        ({"host": "mq", "extra": {"tls": "true"}}, "mqtts://mq", 8883),
        ({"host": "mq", "extra": {"cafile": "/etc/ca.pem"}}, "mqtts://mq", 8883),
        ({"host": "mqtts://mq", "extra": {"tls": True}}, "mqtts://mq", 8883),
    ],
)
def test_broker(fields: dict[str, Any], broker: str, port: int) -> None:
    o = opts(**fields)
    assert o.broker == broker
    assert o.endpoint.port == port
    assert o.endpoint.tls == broker.startswith(("mqtts:", "ssl:"))


def test_defaults() -> None:
    o = opts()
    assert o.prefix == "partreg/v1"
    assert o.username is None and o.password is None and o.token is None
    assert o.mqtt_version == 5
    assert o.timeout == 10.0
    assert o.keepalive == 30


def test_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTREG_BROKER", "mqtt://elsewhere:1")
    monkeypatch.setenv("PARTREG_TOKEN", "from-env")
    monkeypatch.setenv("PARTREG_PREFIX", "other/v1")
    o = opts(host="mq")
    assert o.broker == "mqtt://mq" and o.token is None and o.prefix == "partreg/v1"


def test_login_and_password_are_mqtt_credentials() -> None:
    o = opts(login="site_b", password="pw")
    assert (o.username, o.password, o.token) == ("site_b", "pw", None)
    assert o.reply_topic("cid") == "partreg/v1/reply/site_b/cid"


def test_password_without_login_is_the_token() -> None:
    o = opts(password="tok-123")
    assert (o.username, o.password, o.token) == (None, None, "tok-123")


def test_extra_token_wins() -> None:
    assert opts(password="pw-token", extra={"token": "x-token"}).token == "x-token"
    o = opts(login="u", password="pw", extra={"token": "t"})
    assert (o.username, o.password, o.token) == ("u", "pw", "t")


def test_token_file(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("file-token\nsecond line\n")
    assert opts(extra={"token_file": str(f)}).token == "file-token"
    assert opts(extra={"token": "t", "token_file": str(f)}).token == "t"
    with pytest.raises(partreg.InvalidInput, match="cannot read the token file"):
        opts(extra={"token_file": str(tmp_path / "missing")})


def test_tls_files() -> None:
    o = opts(host="mq", extra={"cafile": "/ca.pem", "certfile": "/c.pem", "keyfile": "/k.pem"})
    assert (o.cafile, o.certfile, o.keyfile) == ("/ca.pem", "/c.pem", "/k.pem")
    assert o.broker == "mqtts://mq"


def test_other_extras() -> None:
    o = opts(
        extra={"prefix": "site/v1/", "mqtt_version": "3.1.1", "timeout": "2.5", "keepalive": 15}
    )
    assert (o.prefix, o.mqtt_version, o.timeout, o.keepalive) == ("site/v1", 4, 2.5, 15)
    assert opts(extra={"mqtt_version": 5}).mqtt_version == 5


def test_extra_as_json_text_and_ui_prefix() -> None:
    o = opts(extra=json.dumps({"extra__partreg__token": "t", "prefix": "p/v1"}))
    assert (o.token, o.prefix) == ("t", "p/v1")
    # An emptied UI field is not given.
    assert opts(extra={"token": "", "prefix": None, "tls": None}).token is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra": {"ca_file": "/x"}}, "unknown extra key 'ca_file'"),
        ({"extra": "{not json"}, "extra is not JSON"),
        ({"extra": "[1, 2]"}, "extra must be a JSON object"),
        ({"extra": {"tls": "yes"}}, "tls must be true or false"),
        ({"extra": {"timeout": "soon"}}, "timeout must be a number"),
        ({"extra": {"timeout": 0}}, "timeout must be > 0"),
        ({"extra": {"timeout": True}}, "timeout must be a number"),
        ({"extra": {"token": 5}}, "token must be a string"),
        ({"extra": {"keyfile": "/k"}}, "keyfile needs certfile"),
        ({"host": "mqtt://mq", "extra": {"tls": True}}, "asks for TLS but the host URL"),
        ({"host": "mqtt://mq:1", "port": 2}, "URL says port 1, the port field 2"),
        ({"host": "http://mq"}, "broker URL must be"),
        ({"extra": {"mqtt_version": "4.0"}}, "mqtt_version must be"),
    ],
)
def test_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(partreg.InvalidInput, match="connection c: " + ".*" + message):
        opts(**fields)


def test_from_connection_object() -> None:
    class Conn:
        conn_id = "site_a"
        host = "mq"
        port = 1999
        login = None
        password = "tok"
        extra = '{"prefix": "a/v1"}'

    o = options_from_connection(Conn())
    assert (o.broker, o.token, o.prefix) == ("mqtt://mq:1999", "tok", "a/v1")

    class Bad(Conn):
        extra = '{"nope": 1}'

    with pytest.raises(partreg.InvalidInput, match="connection site_a: unknown extra key"):
        options_from_connection(Bad())


def test_extra_keys_documented() -> None:
    from partreg.airflow import connection

    for key in EXTRA_KEYS:
        assert f"``{key}``" in (connection.__doc__ or ""), key
