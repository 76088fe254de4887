# SPDX-License-Identifier: MIT
"""Connection options: URLs, the PARTREG_* environment, password and token files."""

from __future__ import annotations

from pathlib import Path

import pytest

import partreg
from partreg._options import Broker, Options


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("mqtt://127.0.0.1:1883", Broker("127.0.0.1", 1883, False)),
        ("mqtt://broker.example", Broker("broker.example", 1883, False)),
        ("mqtts://broker.example", Broker("broker.example", 8883, True)),
        ("mqtts://b:9999", Broker("b", 9999, True)),
        ("tcp://b:1", Broker("b", 1, False)),
        ("ssl://b:2", Broker("b", 2, True)),
        ("mqtt://[::1]:1884", Broker("::1", 1884, False)),
    ],
)
def test_urls(url: str, want: Broker) -> None:
    assert Broker.parse(url) == want


@pytest.mark.parametrize(
    "url", ["127.0.0.1:1883", "http://b:1", "mqtt://", "mqtt://b:x", "mqtt://b:1/path"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(url, use_env=False)


def test_defaults_without_environment() -> None:
    o = Options.resolve(use_env=False)
    assert (o.broker, o.prefix, o.timeout, o.mqtt_version) == (
        "mqtt://127.0.0.1:1883",
        "partreg/v1",
        10.0,
        5,
    )
    assert o.token is None and o.username is None
    cid = o.new_client_id()
    assert cid.startswith("partreg-") and o.reply_topic(cid) == f"partreg/v1/reply/{cid}"


def test_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\nignored\n")
    (tmp_path / "tok").write_text("file-token\r\n")
    env = {
        "PARTREG_BROKER": "mqtts://mq.example:8884",
        "PARTREG_PREFIX": "team/v1",
        "PARTREG_USERNAME": "airflow",
        "PARTREG_PASSWORD_FILE": str(tmp_path / "pw"),
        "PARTREG_MQTT_VERSION": "3.1.1",
        "PARTREG_TIMEOUT": "2.5",
        "PARTREG_TOKEN_FILE": str(tmp_path / "tok"),
    }
    o = Options.resolve(environ=env)
    assert o.broker == "mqtts://mq.example:8884" and o.endpoint.tls
    assert (o.prefix, o.username, o.password, o.mqtt_version, o.timeout) == (
        "team/v1",
        "airflow",
        "secret",
        4,
        2.5,
    )
    assert o.token == "file-token"
    # With a user name, replies come under reply/<user>/ (the shipped ACL).
    assert o.reply_topic("c1") == "team/v1/reply/airflow/c1"
    # PARTREG_TOKEN wins over PARTREG_TOKEN_FILE; an explicit argument over both.
    assert Options.resolve(environ=env | {"PARTREG_TOKEN": "env-token"}).token == "env-token"
    (tmp_path / "tok2").write_text("arg-file\n")
    o = Options.resolve(environ=env | {"PARTREG_TOKEN": "e"}, token_file=str(tmp_path / "tok2"))
    assert o.token == "arg-file"
    assert Options.resolve(environ=env, token="t", broker="mqtt://x:1").broker == "mqtt://x:1"
    assert "secret" not in repr(o) and "arg-file" not in repr(o)


def test_bad_files_and_values(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(password_file=str(tmp_path / "empty"), use_env=False)
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(token_file=str(tmp_path / "missing"), use_env=False)
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(mqtt_version=3, use_env=False)
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(environ={"PARTREG_TIMEOUT": "soon"})
    with pytest.raises(partreg.InvalidInput):
        Options.resolve(
            cafile=str(tmp_path / "missing"), broker="mqtts://b", use_env=False
        ).tls_context()


def test_tls_context_only_for_mqtts(tmp_path: Path) -> None:
    assert Options.resolve("mqtt://b:1", use_env=False).tls_context() is None
    ctx = Options.resolve("mqtts://b:1", use_env=False).tls_context()
    assert ctx is not None and ctx.check_hostname


def test_unreachable_broker_is_said() -> None:
    # Nothing listens on port 1 of loopback: refused at once, said after the timeout.
    with pytest.raises(partreg.BrokerUnreachable) as e:
        partreg.Client("mqtt://127.0.0.1:1", use_env=False, timeout=0.5)
    assert e.value.code == "broker_unreachable" and "127.0.0.1:1" in e.value.message
