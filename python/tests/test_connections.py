# SPDX-License-Identifier: MIT
"""Connecting as libpartreg does: TLS with a CA and a client certificate and
a user name and password file (the broker from compose/mosquitto/
tls.conf.example, as tests/integration/test_tls_auth.sh runs it), and MQTT
3.1.1 (replies through reply_to and correlation_id in the body)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import partreg

from .conftest import REPO, Broker, Stack, _start_stack, _stop_stack, needs_agent, new_source

pytestmark = needs_agent

TLS_EXAMPLE = REPO / "compose" / "mosquitto" / "tls.conf.example"


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, the broker's certificate for IP 127.0.0.1, a client's."""

    def key(name: str) -> None:
        _openssl(
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            d / f"{name}.key",
        )

    key("ca")
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        d / "ca.key",
        "-out",
        d / "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=partreg python test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, cn, ext in [
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "partreg-python", "extendedKeyUsage=clientAuth\n"),
    ]:
        key(name)
        _openssl(
            "req",
            "-new",
            "-key",
            d / f"{name}.key",
            "-out",
            d / f"{name}.csr",
            "-subj",
            f"/CN={cn}",
        )
        (d / f"{name}.ext").write_text(ext)
        _openssl(
            "x509",
            "-req",
            "-in",
            d / f"{name}.csr",
            "-CA",
            d / "ca.pem",
            "-CAkey",
            d / "ca.key",
            "-set_serial",
            "4242",
            "-days",
            "2",
            "-out",
            d / f"{name}.pem",
            "-extfile",
            d / f"{name}.ext",
        )


class TLSBroker(Broker):
    """mosquitto with the shipped TLS example: client certificates required,
    users "agent" and "app" with passwords, no anonymous clients."""

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def client_options(self) -> dict[str, Any]:
        d = self.dir
        return {
            "cafile": str(d / "ca.pem"),
            "certfile": str(d / "client.pem"),
            "keyfile": str(d / "client.key"),
            "username": "app",
            "password_file": str(d / "app.pw"),
        }

    def agent_flags(self) -> list[str]:
        d = self.dir
        return [
            "--cafile",
            str(d / "ca.pem"),
            "--cert",
            str(d / "client.pem"),
            "--key",
            str(d / "client.key"),
            "--username",
            "agent",
            "--password-file",
            str(d / "agent.pw"),
        ]

    def _conf(self) -> Path:
        text = TLS_EXAMPLE.read_text()
        text = re.sub(r"(?m)^listener 8883 127\.0\.0\.1$", f"listener {self.port} 127.0.0.1", text)
        text = text.replace("/etc/mosquitto/certs/", f"{self.dir}/")
        text = re.sub(r"(?m)^password_file .*$", f"password_file {self.dir}/passwd", text)
        text = re.sub(r"(?m)^persistence true$", "persistence false", text)
        text = re.sub(r"(?m)^persistence_location .*\n", "", text)
        if os.getuid() == 0:
            text += "user root\n"  # mosquitto would drop to "mosquitto", who cannot read here
        conf = self.dir / "mosquitto.conf"
        conf.write_text(text)
        return conf


@pytest.fixture
def tls_stack(tmp_path: Path) -> Iterator[Stack]:
    if not shutil.which("openssl") or not shutil.which("mosquitto_passwd"):
        pytest.skip("openssl or mosquitto_passwd is not installed")
    d = tmp_path / "tls"
    d.mkdir()
    make_certs(d)
    for user in ("agent", "app"):
        pw = f"{user}-secret-{os.getpid()}"
        (d / f"{user}.pw").write_text(pw + "\n")
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                *([] if user == "app" else ["-c"]),
                str(d / "passwd"),
                user,
                pw,
            ],
            check=True,
            capture_output=True,
        )
    s = _start_stack(d, broker=TLSBroker(d))
    yield s
    _stop_stack(s, False)


async def test_tls_client_certificate_and_password(tls_stack: Stack) -> None:
    with tls_stack.client() as c:
        assert c.reply_topic.startswith("partreg/v1/reply/app/")
        s = new_source(c)
        with c.partition_lock(s.name, "p", "2023-01-01", "2023-01-02", token=s.token):
            pass
        assert c.wait(s.name, "2023-01-01", "2023-01-02", timeout=5).ready
    async with tls_stack.async_client() as ac:
        assert (await ac.source.get(s.name))["source"] == s.name
        assert (await ac.wait(s.name, "2023-01-01", "2023-01-02", timeout=5)).ready
    opts = tls_stack.broker.client_options()
    # A wrong password, no client certificate, the system's CAs: refused, said.
    (tls_stack.broker.dir / "wrong.pw").write_text("nope\n")
    for bad in (
        {"password_file": str(tls_stack.broker.dir / "wrong.pw")},
        {"certfile": None, "keyfile": None},
        {"cafile": None},
    ):
        with pytest.raises(partreg.BrokerUnreachable):
            partreg.Client(tls_stack.url, use_env=False, timeout=0.7, **(opts | bad))
        with pytest.raises(partreg.BrokerUnreachable):
            await partreg.AsyncClient(
                tls_stack.url, use_env=False, timeout=0.7, **(opts | bad)
            ).connect()


@pytest.mark.agent_flags("--mqtt-version", "3.1.1")
async def test_mqtt_311(own_stack: Stack) -> None:
    with own_stack.client(mqtt_version="3.1.1") as c:
        s = new_source(c)
        with c.partition_lock(s.name, "p", "2023-01-01", "2023-01-02", token=s.token) as lock:
            assert lock.fence == 1
        assert c.wait(s.name, "2023-01-01", "2023-01-02", timeout=5).ready
        with pytest.raises(partreg.NotFound):
            c.source.get("no-such-source")
    async with own_stack.async_client(mqtt_version="3.1.1") as ac:
        assert (await ac.readiness.query(s.name, "2023-01-01", "2023-01-02"))["ready"]
