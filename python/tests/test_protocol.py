# SPDX-License-Identifier: MIT
"""The reply rule, bodies, and the lock helpers: libpartreg's rules, without a broker."""

from __future__ import annotations

import json

import pytest

from partreg import errors
from partreg._protocol import (
    fail_reason,
    prepare_body,
    read_reply,
    renew_period,
    reply_is_for,
    will_for,
)


def reply(**o: object) -> bytes:
    return json.dumps(o).encode()


def test_reply_needs_correlation_and_request_id() -> None:
    r = read_reply(reply(ok=True, status=200, request_id="r1", result={}), b"c-1")
    assert r is not None
    assert reply_is_for(r, "c-1", "r1")
    assert not reply_is_for(r, "c-2", "r1")  # another request's correlation
    assert not reply_is_for(r, "c-1", "r2")  # an earlier resend's answer, or forged


def test_reply_without_request_id_only_payload_too_large() -> None:
    big = read_reply(
        reply(ok=False, status=413, error={"code": "payload_too_large", "message": "x"}), b"c-1"
    )
    other = read_reply(
        reply(ok=False, status=400, error={"code": "invalid_json", "message": "x"}), b"c-1"
    )
    assert big is not None and other is not None
    assert reply_is_for(big, "c-1", "r1")
    assert not reply_is_for(other, "c-1", "r1")


def test_correlation_data_wins_over_body() -> None:
    r = read_reply(reply(request_id="r", correlation_id="body"), b"prop")
    assert r is not None and r.correlation == "prop"
    r = read_reply(reply(request_id="r", correlation_id="body"), None)  # MQTT 3.1.1
    assert r is not None and r.correlation == "body"
    assert read_reply(reply(request_id="r"), b"x" * 65) is None  # longer than any id
    assert read_reply(b"not json", b"c") is None
    assert read_reply(b"[1]", b"c") is None


def test_prepare_body() -> None:
    payload, rid = prepare_body({"source": "s"})
    body = json.loads(payload)
    assert body == {"source": "s", "request_id": rid} and len(rid) == 36
    payload, rid = prepare_body({"request_id": "mine"}, reply_to="t", correlation="c")
    assert rid == "mine"
    assert json.loads(payload) == {"request_id": "mine", "reply_to": "t", "correlation_id": "c"}
    with pytest.raises(TypeError):
        prepare_body({"request_id": 5})


def test_lock_helpers() -> None:
    topic, payload = will_for("partreg/v1", "sess", 10)
    assert topic == "partreg/v1/cmd/session/abort"
    assert json.loads(payload) == {"session": "sess", "grace_s": 10}
    assert renew_period(60, 10) == 5  # at least twice within the grace
    assert renew_period(6, 10) == 2  # a third of the lease
    assert fail_reason(RuntimeError("disk full")) == "disk full"
    assert fail_reason(KeyboardInterrupt()) == "KeyboardInterrupt"
    long = fail_reason(ValueError("é" * 200))
    assert len(long.encode()) <= 256 and long == "é" * 128


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("invalid_time", 400, errors.InvalidInput),
        ("missing_field", 400, errors.InvalidInput),
        ("payload_too_large", 413, errors.InvalidInput),
        ("invalid_interval", 422, errors.InvalidInput),
        ("unknown_command", 404, errors.InvalidInput),
        ("unknown_source", 404, errors.NotFound),
        ("unknown_partition", 404, errors.NotFound),
        ("unauthorized", 401, errors.Unauthorized),
        ("forbidden", 403, errors.Forbidden),
        ("already_locked", 409, errors.Conflict),
        ("stale_fence", 409, errors.Conflict),
        ("request_id_conflict", 409, errors.Conflict),
        ("store_full", 507, errors.ServerError),
        ("internal", 500, errors.ServerError),
        ("something_new", 409, errors.Conflict),
        ("something_new", 418, errors.PartregError),
    ],
)
def test_error_classes(code: str, status: int, cls: type[errors.PartregError]) -> None:
    e = errors.from_reply(
        {
            "ok": False,
            "status": status,
            "error": {"code": code, "message": "m", "details": {"a": 1}},
        }
    )
    assert type(e) is cls
    assert (e.code, e.status, e.message, e.details) == (code, status, "m", {"a": 1})
    assert str(e) == f"{code}: m"
