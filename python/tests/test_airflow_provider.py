# SPDX-License-Identifier: MIT
"""The Airflow provider's pieces that need Airflow but no scheduler and no
agent: its registration, the hook's connections, the sensor's and the
operator's arguments and templates, the triggers' serialization, the
example DAGs. Skipped where Airflow (the [airflow] extra) is not installed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Importing Airflow writes a default airflow.cfg into AIRFLOW_HOME: not ~/airflow.
os.environ.setdefault(
    "AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / f"partreg-pytest-airflow-{os.getuid()}")
)
pytest.importorskip("airflow.sdk", reason="Airflow (the [airflow] extra) is not installed")

from airflow.sdk import DAG
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

import partreg
from partreg.airflow import (
    PartitionEventTrigger,
    PartitionReadySensor,
    PartitionReadyTrigger,
    PartitionRunOperator,
    PartregHook,
    _common,
    operators,
    provider_info,
    triggers,
)
from partreg.airflow.connection import EXTRA_KEYS

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "compose" / "airflow").glob("partreg_*.py"))
UTC = _dt.UTC
#: A task context where none is read.
NO_CONTEXT: Any = {}


def day(d: int) -> _dt.datetime:
    return _dt.datetime(2023, 1, d, tzinfo=UTC)


# ---- registration


def test_provider_info_matches_airflow_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    info = provider_info.get_provider_info()
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    assert info["package-name"] == "partreg"
    assert info["versions"] == [partreg.__version__]
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == PartregHook.conn_type == "partreg"
    module, _, name = conn["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is PartregHook
    assert set(conn["conn-fields"]) <= EXTRA_KEYS
    for kind in ("hooks", "sensors", "operators", "triggers"):
        for entry in info[kind]:
            for m in entry["python-modules"]:
                importlib.import_module(m)


def test_provider_info_imports_nothing_from_airflow() -> None:
    """Airflow imports it during provider discovery, before its SDK is set
    up: importing airflow.sdk there is a circular import."""
    code = (
        "import sys, partreg.airflow.provider_info as p; p.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_entry_point_is_installed() -> None:
    eps = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == "partreg"
    ]
    assert [ep.value for ep in eps] == ["partreg.airflow.provider_info:get_provider_info"]


def test_providers_manager_lists_partreg() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "partreg" in ProvidersManager().providers
    hook = ProvidersManagerTaskRuntime().hooks["partreg"]
    assert hook is not None
    assert hook.hook_class_name == "partreg.airflow.hooks.PartregHook"
    assert hook.connection_id_attribute_name == "partreg_conn_id"


# ---- the hook


@pytest.fixture
def conn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTREG_T",
        json.dumps(
            {
                "conn_type": "partreg",
                "host": "127.0.0.1",
                "port": 1,
                "extra": {"token": "tok-abc", "timeout": 0.5},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTREG_BAD", json.dumps({"conn_type": "partreg", "extra": {"x": 1}})
    )


def test_hook_options(conn_env: None) -> None:
    o = PartregHook("partreg_t").get_options()
    assert (o.broker, o.token, o.timeout) == ("mqtt://127.0.0.1:1", "tok-abc", 0.5)
    assert asyncio.run(PartregHook("partreg_t").aget_options()) == o
    client = asyncio.run(PartregHook("partreg_t").aget_async_client())
    assert isinstance(client, partreg.AsyncClient) and client.options == o
    assert PartregHook().partreg_conn_id == "partreg_default"


def test_hook_refusals(conn_env: None) -> None:
    with pytest.raises(partreg.InvalidInput, match="connection partreg_bad: unknown extra key"):
        PartregHook("partreg_bad").get_options()
    with pytest.raises(Exception, match="partreg_missing"):
        PartregHook("partreg_missing").get_options()
    ok, message = PartregHook("partreg_t").test_connection()
    assert not ok and "broker_unreachable" in message


# ---- intervals


def test_task_interval() -> None:
    ctx = {"data_interval_start": day(1), "data_interval_end": day(2)}
    a, b = _common.task_interval(None, None, ctx)
    assert (partreg.format_time(partreg.parse_time("2023-01-01")), b - a) == (
        "2023-01-01T00:00:00Z",
        86_400_000_000,
    )
    # Rendered templates: {{ data_interval_start }} has a space, | ts a T.
    assert _common.task_interval("2023-01-01 00:00:00+00:00", "2023-01-02T00:00:00+00:00", None)
    assert _common.task_interval(None, "2023-01-03", ctx)[1] - a == 2 * 86_400_000_000
    with pytest.raises(partreg.InvalidInput, match="CronDataIntervalTimetable"):
        _common.task_interval(
            None, None, {"data_interval_start": day(1), "data_interval_end": day(1)}
        )
    with pytest.raises(partreg.InvalidInput, match=r"no start .* no data interval"):
        _common.task_interval(None, None, {"data_interval_start": None})
    with pytest.raises(partreg.InvalidInput, match="must be before"):
        _common.task_interval(day(2), day(1), None)
    with pytest.raises(partreg.InvalidInput, match="is not a time"):
        _common.task_interval("yesterday", day(1), None)
    with pytest.raises(partreg.InvalidInput, match="must be a datetime"):
        _common.task_interval(5, day(1), None)


# ---- the sensor


def test_sensor_arguments() -> None:
    s = PartitionReadySensor(task_id="w", source="sales")
    assert tuple(s.template_fields) == ("source", "start", "end")
    assert s.deferrable and not s.fail_on_failed and s.partreg_conn_id == "partreg_default"
    assert s.start is None and s.end is None
    s = PartitionReadySensor(
        task_id="w2",
        source="sales",
        start="{{ data_interval_start }}",
        end="{{ data_interval_end }}",
        timeout=_dt.timedelta(hours=2),
    )
    assert s.timeout == 7200
    with pytest.raises(ValueError, match=r"w3: start .* must be before end"):
        PartitionReadySensor(task_id="w3", source="sales", start=day(2), end=day(1))
    with pytest.raises(ValueError, match="w4: start 'soon' is not a time"):
        PartitionReadySensor(task_id="w4", source="sales", start="soon", end=day(1))


def test_sensor_templates_render() -> None:
    with DAG(dag_id="t_render", schedule=None, start_date=day(1)):
        s = PartitionReadySensor(
            task_id="w",
            source="{{ params.source }}",
            start="{{ data_interval_start | ts }}",
            end="{{ data_interval_end | ts }}",
        )
    context: Any = {
        "params": {"source": "sales"},
        "data_interval_start": day(1),
        "data_interval_end": day(2),
    }
    s.render_template_fields(context)
    assert (s.source, s.start, s.end) == (
        "sales",
        "2023-01-01T00:00:00+00:00",
        "2023-01-02T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"status": "timeout", "message": "not ready by then"}, AirflowSensorTimeout),
        ({"status": "failed", "message": "p's partition failed"}, AirflowException),
        ({"status": "error", "code": "unknown_source", "message": "no"}, AirflowFailException),
        ({"status": "error", "code": "connection", "message": "no"}, AirflowFailException),
        ({"status": "error", "code": "internal", "message": "hm"}, AirflowException),
        ({"status": "what"}, AirflowException),
    ],
)
def test_sensor_execute_complete_failures(event: dict[str, Any], error: type[Exception]) -> None:
    s = PartitionReadySensor(task_id="w", source="sales")
    with pytest.raises(error) as e:
        s.execute_complete(NO_CONTEXT, event)
    assert type(e.value) is error
    if "message" in event:
        assert event["message"] in str(e.value)


def test_sensor_execute_complete_ready() -> None:
    s = PartitionReadySensor(task_id="w", source="sales")
    event = {
        "status": "ready",
        "source": "sales",
        "start": "2023-01-01T00:00:00Z",
        "end": "2023-01-02T00:00:00Z",
        "seq": 7,
        "seen_at": "2023-01-02T00:00:01Z",
    }
    assert s.execute_complete(NO_CONTEXT, event) == {
        "source": "sales",
        "start": "2023-01-01T00:00:00Z",
        "end": "2023-01-02T00:00:00Z",
        "seq": 7,
    }
    with pytest.raises(AirflowException, match="no event"):
        s.execute_complete(NO_CONTEXT, None)


def test_sensor_soft_fail_skips_on_timeout() -> None:
    s = PartitionReadySensor(task_id="w", source="sales", soft_fail=True)
    with pytest.raises(AirflowSkipException):
        s.resume_execution(
            "execute_complete",
            {"event": {"status": "timeout", "message": "late"}},
            NO_CONTEXT,
        )


# ---- the operator


def test_operator_arguments() -> None:
    def work() -> int:
        return 1

    op = PartitionRunOperator(task_id="x", source="s", provider="p", python_callable=work)
    assert tuple(op.template_fields) == (
        "source",
        "provider",
        "start",
        "end",
        "op_args",
        "op_kwargs",
        "metadata",
    )
    assert (op.ttl, op.grace, op.partreg_conn_id) == (300, 10, "partreg_default")
    op.on_kill()  # no lock held: nothing to do
    with pytest.raises(TypeError, match="callable"):
        not_callable: Any = 5
        PartitionRunOperator(task_id="y", source="s", provider="p", python_callable=not_callable)
    with pytest.raises(ValueError, match=r"z: start .* must be before"):
        PartitionRunOperator(
            task_id="z", source="s", provider="p", python_callable=work, start=day(3), end=day(2)
        )


def test_callable_kwargs() -> None:
    avail = {"lock": "L", "ds": "2023-01-01", "ti": "TI", "x": 1}

    def f(a: int, lock: str, ds: str) -> None: ...

    def g(lock: str, **kw: Any) -> None: ...

    def h(*args: Any, x: int = 0) -> None: ...

    def k(lock: str, ds: str) -> None: ...

    assert operators._callable_kwargs(f, [1], avail) == {"lock": "L", "ds": "2023-01-01"}
    assert operators._callable_kwargs(g, [], avail) == avail
    assert operators._callable_kwargs(h, [1, 2], avail) == {"x": 1}
    # A positional argument fills "lock": it is not given again by name.
    assert operators._callable_kwargs(k, ["mine"], avail) == {"ds": "2023-01-01"}


def test_metadata_limit() -> None:
    operators._check_metadata({"rows": 1, "note": "x" * 900})
    with pytest.raises(partreg.InvalidInput, match="at most 1024"):
        operators._check_metadata({"note": "x" * 1100})
    with pytest.raises(partreg.InvalidInput, match="not JSON"):
        operators._check_metadata({"when": day(1)})


def test_partition_lock_needs_an_interval_outside_a_task() -> None:
    with (
        pytest.raises(partreg.InvalidInput, match="no start"),
        operators.partition_lock("s", "p"),
    ):
        pass


# ---- the triggers


def test_ready_trigger_serializes() -> None:
    t = PartitionReadyTrigger(
        "sales",
        "2023-01-01T00:00:00Z",
        "2023-01-02T00:00:00Z",
        partreg_conn_id="c",
        fail_on_failed=True,
        deadline="2023-01-03T00:00:00Z",
    )
    path, kwargs = t.serialize()
    assert path == "partreg.airflow.triggers.PartitionReadyTrigger"
    json.dumps(kwargs)
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_ready_trigger_through_airflow_serialization() -> None:
    """As the worker hands a deferral to the triggerer: serde-encoded."""
    from airflow.sdk.serde import deserialize, serialize

    t = PartitionReadyTrigger("sales", "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z")
    _, kwargs = t.serialize()
    assert deserialize(serialize(kwargs)) == kwargs


def test_ready_trigger_refuses_bad_input_as_an_event() -> None:
    t = PartitionReadyTrigger("sales", "2023-01-02", "2023-01-01")
    out = asyncio.run(t.outcome())
    assert out["status"] == "error" and out["code"] == "invalid_interval"
    t = PartitionReadyTrigger("sales", "2023-01-01", "2023-01-02", deadline="later")
    assert asyncio.run(t.outcome())["code"] == "invalid_time"


def test_ready_trigger_unknown_connection_is_an_error_event() -> None:
    t = PartitionReadyTrigger("sales", "2023-01-01", "2023-01-02", partreg_conn_id="nope_nope")
    out = asyncio.run(t.outcome())
    assert out["status"] == "error" and out["code"] == "connection"
    assert "nope_nope" in out["message"]


def test_event_trigger_serializes() -> None:
    from airflow.triggers.base import BaseEventTrigger

    t = PartitionEventTrigger("sales", start="2023-01-01", end="2023-01-02 00:00:00")
    path, kwargs = t.serialize()
    assert path == "partreg.airflow.triggers.PartitionEventTrigger"
    assert kwargs == {
        "source": "sales",
        "start": "2023-01-01T00:00:00Z",
        "end": "2023-01-02T00:00:00Z",
        "provider": None,
        "types": ["unlocked"],
        "partreg_conn_id": "partreg_default",
    }
    again = PartitionEventTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    # Two watchers of the same thing are one trigger to the scheduler.
    assert BaseEventTrigger.hash(path, kwargs) == BaseEventTrigger.hash(*again.serialize())
    assert PartitionEventTrigger("sales", types="failed").types == ["failed"]
    with pytest.raises(partreg.InvalidInput, match="together"):
        PartitionEventTrigger("sales", start="2023-01-01")
    with pytest.raises(partreg.InvalidInput, match="must be before"):
        PartitionEventTrigger("sales", start="2023-01-02", end="2023-01-01")


@pytest.mark.parametrize(
    ("kwargs", "event", "fires"),
    [
        ({}, {"type": "unlocked", "start": "2023-01-01T00:00:00Z"}, True),
        ({}, {"type": "locked"}, False),
        ({"types": ["locked", "failed"]}, {"type": "failed"}, True),
        ({"provider": "p"}, {"type": "unlocked", "provider": "q"}, False),
        ({"provider": "p"}, {"type": "unlocked", "provider": "p"}, True),
        (
            {"start": "2023-01-02", "end": "2023-01-03"},
            {"type": "unlocked", "start": "2023-01-01T00:00:00Z", "end": "2023-01-02T00:00:00Z"},
            False,  # touches, does not overlap
        ),
        (
            {"start": "2023-01-02", "end": "2023-01-03"},
            {"type": "unlocked", "start": "2023-01-02T12:00:00Z", "end": "2023-01-04T00:00:00Z"},
            True,
        ),
        ({"start": "2023-01-02", "end": "2023-01-03"}, {"type": "unlocked"}, False),
    ],
)
def test_event_trigger_matches(kwargs: dict[str, Any], event: dict[str, Any], fires: bool) -> None:
    assert PartitionEventTrigger("s", **kwargs).matches(event) is fires


def test_events_batches() -> None:
    batch = {"v": 2, "source": "s", "epoch": 1, "events": [{"seq": 4}, {"seq": 5}, "junk"]}
    assert triggers._batch_events(json.dumps(batch).encode(), "s") == [{"seq": 4}, {"seq": 5}]
    assert triggers._batch_events(b'{"seq": 3, "type": "locked"}', "s") == [
        {"seq": 3, "type": "locked"}
    ]
    assert triggers._batch_events(b"not json", "s") == []
    assert triggers._batch_events(b'{"v": 1, "events": []}', "s") == []
    with pytest.raises(partreg.UnsupportedFormat, match="upgrade"):
        triggers._batch_events(b'{"v": 3, "events": []}', "s")


# ---- the example DAGs


def test_example_dags_load_and_serialize() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    assert [p.name for p in EXAMPLES] == [
        "partreg_asset_watcher.py",
        "partreg_consumer.py",
        "partreg_producer.py",
    ]
    for path in EXAMPLES:
        bag = DagBag(dag_folder=path)
        assert not bag.import_errors, bag.import_errors
        (dag,) = bag.dags.values()
        assert dag.dag_id == path.stem
        data = DagSerialization.to_dict(dag)
        again = DagSerialization.from_dict(data)
        assert set(again.task_dict) == set(dag.task_dict)
    sensor = (
        DagBag(dag_folder=REPO / "compose/airflow/partreg_consumer.py")
        .dags["partreg_consumer"]
        .task_dict["wait_for_sales"]
    )
    assert isinstance(sensor, PartitionReadySensor) and sensor.fail_on_failed
