# SPDX-License-Identifier: MIT
"""Errors: one class per kind of refusal, each carrying the agent's ``code``.

The classes follow the CLI's exit-status table (``partreg(1)``), so a caller
tells "fix your input" from "not there" from "someone else holds it":

====================  =======================================================  ==========
class                 codes                                                    CLI status
====================  =======================================================  ==========
:class:`InvalidInput` ``invalid_*``, ``missing_field``, ``payload_too_large``,  2
                      ``unknown_command``
:class:`NotFound`     ``unknown_source``, ``unknown_provider``,                 5
                      ``unknown_partition``
:class:`Unauthorized` ``unauthorized`` (no valid token)                         1
:class:`Forbidden`    ``forbidden`` (a valid token used beyond its reach)       1
:class:`Conflict`     ``source_exists``, ``provider_exists``, ``already_locked``, 1
                      ``not_locked``, ``stale_fence``, ``lease_expired``,
                      ``request_id_conflict``
:class:`ServerError`  ``internal``, ``store_unavailable``, ``store_full``      1
:class:`BrokerUnreachable` no connection to the broker in time                 3
:class:`Timeout`      no reply (or ``wait`` ran out)                            4
:class:`LockLost`     ``partition_lock``: a renew or the unlock was refused     75
====================  =======================================================  ==========
"""

from __future__ import annotations

from typing import Any


class PartregError(Exception):
    """A refusal by the agent, or a local failure with a code of the same kind.

    ``code`` is the stable protocol code (``already_locked``, ``invalid_time``,
    ``timeout``...), ``status`` the HTTP-like status of the reply (None when
    the error did not come from the agent), ``message`` the agent's text,
    ``details`` its optional details, and ``reply`` the whole reply envelope.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        *,
        details: dict[str, Any] | None = None,
        reply: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.reply = reply


class InvalidInput(PartregError, ValueError):
    """The input is wrong (locally checked, or refused by the agent with an
    ``invalid_*`` code, ``missing_field``, ``payload_too_large``,
    ``unknown_command``)."""


class NotFound(PartregError, LookupError):
    """Unknown source, provider or partition (also a deleted partition)."""


class Unauthorized(PartregError):
    """No valid token: missing, made up, or rotated away (401)."""


class Forbidden(PartregError):
    """A valid token used beyond its reach (403)."""


class Conflict(PartregError):
    """The registry's state refuses it (409): exists already, locked by
    another run, not locked, stale fence, lease expired, request id reused."""


class ServerError(PartregError):
    """The agent could not do it (5xx): internal, store unavailable or full."""


class BrokerUnreachable(PartregError, ConnectionError):
    """No connection to the broker within the timeout (code
    ``broker_unreachable``; the message says the last reason known)."""


class Timeout(PartregError, TimeoutError):
    """No reply within the timeout, or ``wait`` ran out (code ``timeout``)."""


class LockLost(PartregError):
    """``partition_lock``: the agent refused a renew or the final unlock
    (``lease_expired``, ``stale_fence``, ``not_locked``...): another run may
    be writing the partition now; what this run wrote does not count."""


class BlockerFailed(PartregError):
    """``wait(..., fail_on_failed=True)``: a partition overlapping the
    interval is ``failed`` (code ``failed``); ``details`` describes it."""


class UnsupportedFormat(PartregError):
    """A summary of a format newer than this package reads (code
    ``unsupported_format``): upgrade partreg."""


_INPUT = frozenset(
    {
        "invalid_json",
        "invalid_field",
        "missing_field",
        "invalid_name",
        "invalid_time",
        "invalid_interval",
        "invalid_cursor",
        "invalid_reply_topic",
        "payload_too_large",
        "unknown_command",
    }
)
_NOT_FOUND = frozenset({"unknown_source", "unknown_provider", "unknown_partition"})
_CONFLICT = frozenset(
    {
        "source_exists",
        "provider_exists",
        "already_locked",
        "not_locked",
        "stale_fence",
        "lease_expired",
        "request_id_conflict",
    }
)

#: Codes by which the agent says a lock is no longer this run's.
LOST_CODES = frozenset({"lease_expired", "stale_fence", "not_locked"})


def error_class(code: str, status: int | None) -> type[PartregError]:
    """The class of an error reply with this code and status."""
    if code in _INPUT:
        return InvalidInput
    if code in _NOT_FOUND:
        return NotFound
    if code == "unauthorized":
        return Unauthorized
    if code == "forbidden":
        return Forbidden
    if code in _CONFLICT:
        return Conflict
    if status is not None and status >= 500:
        return ServerError
    if status == 400 or status == 413 or status == 422:
        return InvalidInput
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    return PartregError


def from_reply(reply: dict[str, Any]) -> PartregError:
    """The exception for an error reply envelope (``"ok": false``)."""
    err = reply.get("error")
    code, message, details = "unknown", "(no message)", None
    if isinstance(err, dict):
        if isinstance(err.get("code"), str):
            code = err["code"]
        if isinstance(err.get("message"), str):
            message = err["message"]
        if isinstance(err.get("details"), dict):
            details = err["details"]
    status = reply.get("status")
    st = status if isinstance(status, int) and not isinstance(status, bool) else None
    return error_class(code, st)(code, message, st, details=details, reply=reply)
