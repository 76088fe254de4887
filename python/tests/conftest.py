# SPDX-License-Identifier: MIT
"""Fixtures: a real mosquitto and a real partregd, as tests/integration/lib.sh
starts them.

mosquitto runs with the shipped compose/mosquitto/mosquitto.conf, its
listener moved to a free loopback port and persistence off; partregd (the
binary in $PARTREGD, as ctest passes it to the integration tests) runs on a
store in a temporary directory. Both are stopped by PID. Tests that need
neither run without $PARTREGD; the others are skipped then.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import partreg

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF = REPO / "compose" / "mosquitto" / "mosquitto.conf"
PARTREGD = os.environ.get("PARTREGD", "")
SANITIZED = os.environ.get("PARTREG_SANITIZE", "").upper() in ("1", "ON", "TRUE", "YES")

needs_agent = pytest.mark.skipif(
    not PARTREGD or not os.access(PARTREGD, os.X_OK),
    reason="PARTREGD (the built partregd) is not set: run through ctest",
)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    """A mosquitto of the test's own, on a free loopback port."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def client_options(self) -> dict[str, Any]:
        """What a client needs besides the URL (TLS files, credentials)."""
        return {}

    def agent_flags(self) -> list[str]:
        """What partregd needs besides --broker."""
        return []

    def _conf(self) -> Path:
        text = MOSQUITTO_CONF.read_text()
        text = re.sub(r"(?m)^listener 1883 127\.0\.0\.1$", f"listener {self.port} 127.0.0.1", text)
        text = re.sub(r"(?m)^persistence true$", "persistence false", text)
        text = re.sub(
            r"(?m)^persistence_location .*$", f"persistence_location {self.dir}/mosquitto/", text
        )
        conf = self.dir / "mosquitto.conf"
        conf.write_text(text)
        return conf

    def start(self) -> None:
        """Start on self.port, or on a random free one (retried when taken)."""
        fixed = self.port != 0
        for _ in range(30):
            if not fixed:
                self.port = random.randint(20000, 59999)
                if _port_open(self.port):
                    continue
            conf = self._conf()
            log = open(self.dir / "broker.log", "ab")  # noqa: SIM115 (closed with the process)
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
            for _ in range(100):
                if _port_open(self.port):
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop()
            if fixed:
                time.sleep(0.2)  # the port may still be in TIME_WAIT: try again
        raise RuntimeError("could not start mosquitto")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@dataclass
class Agent:
    """partregd on a store of its own."""

    dir: Path
    broker: Broker
    flags: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dir / "agent.log"

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 (closed with the process)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARTREG_")}
        self.proc = subprocess.Popen(
            [
                PARTREGD,
                "--broker",
                self.broker.url,
                "--data-dir",
                str(self.dir / "data"),
                "--log-level",
                "debug",
                *self.broker.agent_flags(),
                *self.flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        self.wait_online()

    def wait_online(self, timeout: float = 20.0) -> None:
        """Until partregd answers a read: then it is connected and subscribed."""
        deadline = time.monotonic() + timeout
        version = "3.1.1" if "3.1.1" in self.flags else 5
        with partreg.Client(
            self.broker.url, use_env=False, mqtt_version=version, **self.broker.client_options()
        ) as c:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"partregd exited {self.proc.returncode}: {self.tail()}")
                try:
                    c.call("source/list", {"limit": 1}, timeout=0.5)
                    return
                except partreg.Timeout:
                    pass
        raise RuntimeError(f"partregd did not come online: {self.tail()}")

    def stop(self) -> None:
        """SIGTERM: it must exit 0 within 10 s, with no sanitizer report."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("partregd did not stop within 10 s of SIGTERM") from None
        finally:
            self.proc = None
        assert rc == 0, f"partregd exited {rc} after SIGTERM: {self.tail()}"
        self.check_sanitizer()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def check_sanitizer(self) -> None:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        bad = re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", text)
        assert bad is None, f"sanitizer report in {self.log}"

    def tail(self, n: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Stack:
    broker: Broker
    agent: Agent

    @property
    def url(self) -> str:
        return self.broker.url

    def client(self, **kw: Any) -> partreg.Client:
        return partreg.Client(self.url, use_env=False, **(self.broker.client_options() | kw))

    def async_client(self, **kw: Any) -> partreg.AsyncClient:
        return partreg.AsyncClient(self.url, use_env=False, **(self.broker.client_options() | kw))


def _start_stack(d: Path, flags: list[str] | None = None, broker: Broker | None = None) -> Stack:
    d.mkdir(parents=True, exist_ok=True)
    broker = broker or Broker(d)
    broker.start()
    agent = Agent(d, broker, flags or [])
    try:
        agent.start()
    except BaseException:
        agent.kill()
        broker.stop()
        raise
    return Stack(broker, agent)


def _stop_stack(s: Stack, failed: bool) -> None:
    try:
        if failed:
            print(f"\n---- partregd log ({s.agent.log}) ----\n{s.agent.tail(60)}")
        if s.agent.proc is not None:
            s.agent.stop()
    finally:
        s.agent.kill()
        s.broker.stop()


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One mosquitto and one partregd for the whole session (each test uses
    sources of its own)."""
    if not PARTREGD:
        pytest.skip("PARTREGD (the built partregd) is not set: run through ctest")
    s = _start_stack(tmp_path_factory.mktemp("stack"))
    yield s
    _stop_stack(s, request.session.testsfailed > 0)


@pytest.fixture
def own_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A broker and an agent of the test's own (it may stop or restart them);
    extra partregd flags with @pytest.mark.agent_flags(...)."""
    if not PARTREGD:
        pytest.skip("PARTREGD (the built partregd) is not set: run through ctest")
    mark = request.node.get_closest_marker("agent_flags")
    s = _start_stack(tmp_path / "own", list(mark.args) if mark else [])
    yield s
    failed = bool(getattr(request.node, "rep_call", None) and request.node.rep_call.failed)
    _stop_stack(s, failed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)  # type: ignore[attr-defined]
    return rep


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "agent_flags(*flags): partregd flags of own_stack")


@pytest.fixture
def client(stack: Stack) -> Iterator[partreg.Client]:
    with stack.client() as c:
        yield c


@pytest.fixture
async def aclient(stack: Stack) -> AsyncIterator[partreg.AsyncClient]:
    async with stack.async_client() as c:
        yield c


@dataclass
class Source:
    """A registered source with provider "p": its name, owner token and the
    provider's token."""

    name: str
    token: str
    provider_token: str
    provider: str = "p"


def new_source(c: partreg.Client) -> Source:
    name = f"s-{uuid.uuid4().hex[:12]}"
    token = c.source.register(name, "owner")["access_token"]
    ptoken = c.provider.register(name, "p", token=token)["provider_token"]
    return Source(name, token, ptoken)


@pytest.fixture
def src(client: partreg.Client) -> Source:
    return new_source(client)
