# SPDX-License-Identifier: MIT
"""Producer DAG (Airflow instance A), with the partreg provider: export a day
of sales under the lock of its partition, then the day's total.

Each run stands for one day, its data interval [data_interval_start,
data_interval_end) (CronDataIntervalTimetable: in Airflow 3 a plain
schedule="@daily" gives runs an empty interval). The same interval names the
partition locked, the partition the consumers wait for, and the files:
sales/day=YYYY-MM-DD.csv and totals/day=YYYY-MM-DD.json under
$PARTREG_EXAMPLE_DATA (/tmp/partreg-example), a directory both sites see (in
real life an object store).

- export_sales: PartitionRunOperator locks [start, end) of source "sales" as
  provider "airflow_export" (a session whose MQTT Last Will fails the day if
  the worker dies, a lease renewed in the background), runs export() and
  unlocks with metadata (rows, and where it ran), or, when export() raises,
  fails the day with the exception's text. Trigger it with the param
  fail=true (`airflow dags test partreg_producer -c '{"fail": true}'`) to
  see that.
- total_sales: a @task using partition_lock() the same way for source
  "sales_totals".

Needs `pip install 'partreg[airflow]'` on the workers and two connections,
each with the token of one provider (the CLI: `partreg provider register
sales airflow_export` prints it; a token is never in the DAG):

    AIRFLOW_CONN_PARTREG_DEFAULT='{"conn_type": "partreg",
        "host": "mqtts://mq.site-a.example:8883",
        "extra": {"token": "<provider token of sales/airflow_export>"}}'
    AIRFLOW_CONN_PARTREG_TOTALS='{"conn_type": "partreg",
        "host": "mqtts://mq.site-a.example:8883",
        "extra": {"token": "<provider token of sales_totals/airflow_export>"}}'

This is the provider's version of sales_producer.py (which runs `partreg run`
in a BashOperator): deploy one of the two. tests/integration/test_airflow.sh
runs it in Apache Airflow 3.3.2.
"""

from __future__ import annotations

import csv
import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task
from partreg import PartitionLock
from partreg.airflow import PartitionRunOperator, partition_lock


def _data() -> Path:
    return Path(os.environ.get("PARTREG_EXAMPLE_DATA", "/tmp/partreg-example"))


def export(lock: PartitionLock, data_interval_start: datetime, params: dict[str, Any]) -> str:
    """Write the day's sales (made up here) and return the file's path."""
    day = f"{data_interval_start:%Y-%m-%d}"
    if params.get("fail"):
        raise RuntimeError(f"export of {day} failed: the shop database did not answer")
    rows = [(f"{day}T{h:02d}:00:00Z", random.randint(1, 100)) for h in range(24)]
    path = _data() / "sales" / f"day={day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.fence-{lock.fence}")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["at", "amount", "fence"])
        w.writerows((at, amount, lock.fence) for at, amount in rows)
    tmp.replace(path)  # readers see the old file or the new one, never half of one
    lock.metadata["rows"] = len(rows)
    return str(path)


with DAG(
    dag_id="partreg_producer",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2023, 1, 1, tzinfo=UTC),
    catchup=False,
    params={"fail": Param(False, type="boolean", description="make the export raise")},
    tags=["partreg"],
) as dag:
    export_sales = PartitionRunOperator(
        task_id="export_sales",
        source="sales",
        provider="airflow_export",
        python_callable=export,
        ttl=300,
    )

    @task
    def total_sales(path: str, data_interval_start: datetime | None = None) -> int:
        """The day's total, under the lock of its own partition."""
        with partition_lock(
            "sales_totals", "airflow_export", partreg_conn_id="partreg_totals"
        ) as lock:
            with open(path, newline="") as f:
                total = sum(int(row["amount"]) for row in csv.DictReader(f))
            out = _data() / "totals" / f"day={data_interval_start:%Y-%m-%d}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"total": total, "fence": lock.fence}))
            lock.metadata["total"] = total
        return total

    total_sales(export_sales.output)
