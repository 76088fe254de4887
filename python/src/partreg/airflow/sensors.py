# SPDX-License-Identifier: MIT
"""PartitionReadySensor: wait until an interval of a source is ready."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from .. import Readiness
from .._time import format_us
from ..errors import BlockerFailed, BrokerUnreachable, InvalidInput, NotFound, PartregError, Timeout
from ._common import check_given_interval, check_now, describe, ready_result, task_interval
from .connection import DEFAULT_CONN_ID
from .hooks import PartregHook
from .triggers import PartitionReadyTrigger

#: How much longer than the sensor's timeout Airflow gives the trigger
#: before it cancels it: the trigger reports its own deadline first, with
#: what it still waited for.
_TRIGGER_MARGIN = _dt.timedelta(seconds=60)


#: Trigger errors that a retry cannot mend: fail without retries.
_HOPELESS = frozenset(
    {"unknown_source", "invalid_time", "invalid_interval", "invalid_field", "connection"}
)


class PartitionReadySensor(BaseSensorOperator):
    """Wait until [start, end) of ``source`` is ready (every instant covered
    by ready partitions, none pending, locked or failed over it).

    ``start`` and ``end`` (templated) default to the run's data interval.
    Deferrable by default: the task checks once, and if the interval is not
    ready it hands the wait to :class:`~partreg.airflow.triggers.PartitionReadyTrigger`
    in the triggerer and frees its worker slot; the trigger follows the
    source's retained summary, so the task resumes within a broker hop of
    the unlock. With ``deferrable=False`` each poke (``mode`` poke or
    reschedule, every ``poke_interval``) checks once from the summary.

    Fails at once, without retries, for bad times, start >= end (also an
    empty data interval), an unknown source and a connection that does not
    make a client. With ``fail_on_failed``, a failed partition overlapping
    the interval fails the task (retries apply: a retry waits again for the
    producer's next run). After ``timeout`` seconds (Airflow's sensor
    default when not given) it fails with AirflowSensorTimeout, or is
    skipped with ``soft_fail``. Returns (XCom) ``{"source", "start", "end",
    "seq"}``.
    """

    template_fields: Sequence[str] = ("source", "start", "end")
    ui_color = "#d8ecf3"

    def __init__(
        self,
        *,
        source: str,
        start: Any = None,
        end: Any = None,
        deferrable: bool = True,
        fail_on_failed: bool = False,
        timeout: _dt.timedelta | float | None = None,
        partreg_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        try:
            check_given_interval(start, end)
        except InvalidInput as e:
            raise ValueError(f"{self.task_id}: {e.message}") from None
        self.source = source
        self.start = start
        self.end = end
        self.deferrable = deferrable
        self.fail_on_failed = fail_on_failed
        self.partreg_conn_id = partreg_conn_id

    def _interval(self, context: Context) -> tuple[int, int]:
        try:
            return task_interval(self.start, self.end, context, "wait")
        except InvalidInput as e:
            raise AirflowFailException(f"{self.task_id}: {e.message}") from None

    def _check(self, a: int, b: int) -> Readiness:
        """One check; what cannot end well fails the task."""
        try:
            with PartregHook(self.partreg_conn_id).get_conn() as client:
                r = check_now(client, self.source, a, b, fail_on_failed=self.fail_on_failed)
        except (NotFound, InvalidInput) as e:
            raise AirflowFailException(e.message) from None
        except BlockerFailed as e:
            raise AirflowException(e.message) from None
        self.log.info("%s", describe(self.source, r))
        return r

    def poke(self, context: Context) -> PokeReturnValue:
        """One check from the summary (``deferrable=False``). A broker or
        agent that does not answer is "not yet": the next poke asks again."""
        a, b = self._interval(context)
        try:
            r = self._check(a, b)
        except (BrokerUnreachable, Timeout) as e:
            self.log.warning("%s", e)
            return PokeReturnValue(False)
        return PokeReturnValue(r.ready, ready_result(self.source, r) if r.ready else None)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        a, b = self._interval(context)
        try:
            r = self._check(a, b)
        except PartregError as e:
            # The broker or the agent did not answer here: let the trigger,
            # which keeps trying, find out.
            self.log.warning("checking before deferring: %s", e)
        else:
            if r.ready:
                return ready_result(self.source, r)
        deadline = format_us(int((time.time() + self.timeout) * 1_000_000))
        self.log.info(
            "deferring: the triggerer waits for %s [%s, %s) until %s; no worker slot is held",
            self.source,
            format_us(a),
            format_us(b),
            deadline,
        )
        self.defer(
            trigger=PartitionReadyTrigger(
                self.source,
                format_us(a),
                format_us(b),
                partreg_conn_id=self.partreg_conn_id,
                fail_on_failed=self.fail_on_failed,
                deadline=deadline,
            ),
            method_name="execute_complete",
            timeout=_dt.timedelta(seconds=self.timeout) + _TRIGGER_MARGIN,
        )
        return None  # not reached: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Back from the trigger: its event decides."""
        if not isinstance(event, dict):
            raise AirflowException(f"{self.task_id}: the trigger sent no event ({event!r})")
        status = event.get("status")
        if status == "ready":
            self.log.info(
                "%s [%s, %s) is ready (summary seq %s); the trigger saw it at %s",
                event.get("source"),
                event.get("start"),
                event.get("end"),
                event.get("seq"),
                event.get("seen_at"),
            )
            return {k: event.get(k) for k in ("source", "start", "end", "seq")}
        message = str(event.get("message") or event)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "failed":
            raise AirflowException(message)
        if status == "error" and event.get("code") in _HOPELESS:
            raise AirflowFailException(message)
        raise AirflowException(message)
