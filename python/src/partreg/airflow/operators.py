# SPDX-License-Identifier: MIT
"""Run code under a partition's lock: PartitionRunOperator, and
partition_lock() for ``@task`` functions.

Both are :meth:`partreg.Client.partition_lock` inside an Airflow task: a
fresh session whose MQTT Last Will fails the partition ``grace`` seconds
after the worker dies, a lease of ``ttl`` seconds renewed in the background,
then an unlock with metadata when the code returns, or a fail with the
exception's text when it raises. A task stopped by Airflow (marked failed,
timed out: ``on_kill``) fails the partition at once, with the lock's fence,
so that consumers waiting with ``fail_on_failed`` learn it at once too.

The unlock's metadata is what the code put in ``lock.metadata`` plus where
it ran: ``dag_id``, ``run_id``, ``task_id``, ``try_number``, ``host``,
``duration_s`` (the code's own keys win). The agent takes at most 1024 bytes
of it: more fails the partition (and the task) with a message saying so,
rather than leave it locked until its lease runs out.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context, get_current_context
from airflow.sdk.exceptions import AirflowFailException

from .. import Client, PartitionLock
from .._time import format_us
from ..errors import InvalidInput, PartregError
from ._common import check_given_interval, task_interval
from .connection import DEFAULT_CONN_ID
from .hooks import PartregHook

#: The largest unlock metadata the agent takes (compact JSON bytes).
METADATA_MAX = 1024

_KILLED = "the Airflow task was stopped (on_kill)"


def _callable_kwargs(
    func: Callable[..., Any], args: Collection[Any], available: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments ``func`` asks for, out of ``available`` (all
    of them when it takes ``**kwargs``), as PythonOperator passes them."""
    params = list(inspect.signature(func).parameters.values())
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return dict(available)
    taken = {p.name for p in params[: len(args)] if p.kind != p.KEYWORD_ONLY}
    return {
        p.name: available[p.name]
        for p in params
        if p.name in available and p.name not in taken and p.kind != p.VAR_POSITIONAL
    }


def _run_metadata(context: Mapping[str, Any] | None, t0: float) -> dict[str, Any]:
    md: dict[str, Any] = {}
    ti = None if context is None else context.get("ti")
    for key in ("dag_id", "run_id", "task_id", "try_number"):
        v = getattr(ti, key, None)
        if isinstance(v, (str, int)):
            md[key] = v
    md["host"] = socket.gethostname()
    md["duration_s"] = round(time.monotonic() - t0, 3)
    return md


def _check_metadata(md: dict[str, Any]) -> None:
    try:
        size = len(json.dumps(md, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as e:
        raise InvalidInput("invalid_field", f"the unlock metadata is not JSON: {e}") from None
    if size > METADATA_MAX:
        raise InvalidInput(
            "invalid_field",
            f"the unlock metadata is {size} bytes as JSON; the agent takes at most {METADATA_MAX}",
        )


class _Killer:
    """What ``on_kill`` does while a lock is held: fail the partition with
    the lock's fence (a later run's lock is never touched)."""

    def __init__(self, client: Client, lock: PartitionLock) -> None:
        self.client, self.lock = client, lock

    def __call__(self) -> None:
        lock = self.lock
        # Refused when unlocked or failed meanwhile; not answered when the
        # agent is away: then the Last Will and the lease remain.
        with contextlib.suppress(PartregError):
            self.client.partition.fail(
                lock.source,
                lock.provider,
                lock.start,
                lock.end,
                fence=lock.fence,
                reason=_KILLED,
                token=lock.token,
            )


@contextlib.contextmanager
def _locked(
    context: Mapping[str, Any] | None,
    source: str,
    provider: str,
    a: int,
    b: int,
    *,
    ttl: int,
    grace: int,
    metadata: Mapping[str, Any] | None,
    conn_id: str,
    on_kill: Callable[[Callable[[], None] | None], None],
) -> Iterator[PartitionLock]:
    t0 = time.monotonic()
    log = _task_log(context)
    with PartregHook(conn_id).get_conn() as client:
        with client.partition_lock(
            source,
            provider,
            format_us(a),
            format_us(b),
            ttl=ttl,
            grace=grace,
            metadata=dict(metadata or {}),
        ) as lock:
            log(
                f"partreg: locked {source} [{format_us(a)}, {format_us(b)}) as {provider}, "
                f"fence {lock.fence}, lease {ttl} s renewed in the background"
            )
            on_kill(_Killer(client, lock))
            try:
                yield lock
                lock.metadata = _run_metadata(context, t0) | lock.metadata
                _check_metadata(lock.metadata)
            finally:
                on_kill(None)
        log(
            f"partreg: {source} [{format_us(a)}, {format_us(b)}) is ready, "
            f"version {lock.result.get('version')}, fence {lock.fence}"
        )


def _task_log(context: Mapping[str, Any] | None) -> Callable[[str], None]:
    task = None if context is None else context.get("task")
    logger = getattr(task, "log", None)
    if logger is None:
        return lambda _msg: None
    return lambda msg: logger.info("%s", msg)


class PartitionRunOperator(BaseOperator):
    """Run ``python_callable`` under the lock of [start, end) of ``source``
    by ``provider`` (see the module): the partition is ready when it
    returns, failed with the exception's text when it raises.

    ``start`` and ``end`` (templated) default to the run's data interval.
    The callable gets ``op_args`` and, as PythonOperator gives them, the
    ``op_kwargs`` and context entries its signature names, plus ``lock``:
    the :class:`partreg.PartitionLock` (``lock.fence`` for your sink,
    ``lock.metadata`` for the unlock). Its return value is the task's XCom;
    the XCom ``partition`` holds ``source``, ``provider``, ``start``,
    ``end``, ``fence`` and ``version``.

    The connection (``partreg_conn_id``) needs the source's or the
    provider's token. ``ttl`` is the lease (renewed every min(ttl/3,
    grace/2) s), ``grace`` how long after the worker's death the agent
    waits for a renew before failing the partition.
    """

    template_fields: Sequence[str] = (
        "source",
        "provider",
        "start",
        "end",
        "op_args",
        "op_kwargs",
        "metadata",
    )
    ui_color = "#f3e3d8"

    def __init__(
        self,
        *,
        source: str,
        provider: str,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        start: Any = None,
        end: Any = None,
        ttl: int = 300,
        grace: int = 10,
        metadata: Mapping[str, Any] | None = None,
        partreg_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise TypeError(f"{self.task_id}: python_callable must be callable")
        try:
            check_given_interval(start, end)
        except InvalidInput as e:
            raise ValueError(f"{self.task_id}: {e.message}") from None
        self.source = source
        self.provider = provider
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.start = start
        self.end = end
        self.ttl = ttl
        self.grace = grace
        self.metadata = dict(metadata or {})
        self.partreg_conn_id = partreg_conn_id
        self._kill: Callable[[], None] | None = None

    def _set_kill(self, kill: Callable[[], None] | None) -> None:
        self._kill = kill

    def execute(self, context: Context) -> Any:
        try:
            a, b = task_interval(self.start, self.end, context, "partition")
        except InvalidInput as e:
            raise AirflowFailException(f"{self.task_id}: {e.message}") from None
        with _locked(
            context,
            self.source,
            self.provider,
            a,
            b,
            ttl=self.ttl,
            grace=self.grace,
            metadata=self.metadata,
            conn_id=self.partreg_conn_id,
            on_kill=self._set_kill,
        ) as lock:
            available = {**context, **self.op_kwargs, "lock": lock}
            result = self.python_callable(
                *self.op_args, **_callable_kwargs(self.python_callable, self.op_args, available)
            )
        context["ti"].xcom_push(
            key="partition",
            value={
                "source": self.source,
                "provider": self.provider,
                "start": format_us(a),
                "end": format_us(b),
                "fence": lock.fence,
                "version": lock.result.get("version"),
            },
        )
        return result

    def on_kill(self) -> None:
        """Fail the partition now (with the lock's fence), if one is held."""
        kill = self._kill
        if kill is not None:
            kill()


@contextlib.contextmanager
def partition_lock(
    source: str,
    provider: str,
    start: Any = None,
    end: Any = None,
    *,
    ttl: int = 300,
    grace: int = 10,
    metadata: Mapping[str, Any] | None = None,
    partreg_conn_id: str = DEFAULT_CONN_ID,
) -> Iterator[PartitionLock]:
    """Run a block under a partition's lock, in a ``@task`` function (see
    the module)::

        @task
        def export():
            with partition_lock("sales", "export") as lock:   # the run's data interval
                n = write_day(fence=lock.fence)
                lock.metadata["rows"] = n

    ``start`` and ``end`` default to the running task's data interval. While
    the block runs, the task's ``on_kill`` also fails the partition."""
    try:
        context: Mapping[str, Any] | None = get_current_context()
    except Exception:  # not in a running task: start and end must be given
        context = None
    a, b = task_interval(start, end, context, "partition")
    task = None if context is None else context.get("task")

    def set_kill(kill: Callable[[], None] | None) -> None:
        # The task runner calls ti.task.on_kill() on SIGTERM: while the lock
        # is held, that is this task's on_kill followed by the lock's.
        if task is None:
            return
        if kill is None:
            task.__dict__.pop("on_kill", None)
            return
        original = type(task).on_kill

        def on_kill() -> None:
            kill()
            original(task)

        object.__setattr__(task, "on_kill", on_kill)

    with _locked(
        context,
        source,
        provider,
        a,
        b,
        ttl=ttl,
        grace=grace,
        metadata=metadata,
        conn_id=partreg_conn_id,
        on_kill=set_kill,
    ) as lock:
        yield lock
