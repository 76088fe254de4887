# SPDX-License-Identifier: MIT
"""Consumer DAG (Airflow instance B, isolated from A), with the partreg
provider: load a day of sales once partreg says it is ready.

PartitionReadySensor waits for the run's data interval of source "sales".
It is deferrable: it checks once, then hands the wait to the triggerer,
which follows the source's retained summary on the broker (no polling) and
resumes the task the moment the day is ready; no worker slot is held while
it waits. fail_on_failed=True fails the task as soon as the producer's
partition of the day is failed (its export raised, or its worker died)
instead of waiting until the timeout (clear it, or give it retries, to wait
for the producer's next run). The same data interval names the file loaded.

Instance B needs a broker that sees the agent's retained state (the same
broker as A, or one bridged to it) and no token, only reads:

    AIRFLOW_CONN_PARTREG_DEFAULT='{"conn_type": "partreg", "host": "mqtts://mq.site-b.example:8883"}'

This is the provider's version of sales_consumer.py: deploy one of the two.
tests/integration/test_airflow.sh runs it in Apache Airflow 3.3.2.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, CronDataIntervalTimetable, task
from partreg.airflow import PartitionReadySensor


def _data() -> Path:
    return Path(os.environ.get("PARTREG_EXAMPLE_DATA", "/tmp/partreg-example"))


with DAG(
    dag_id="partreg_consumer",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2023, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["partreg"],
) as dag:
    wait_for_sales = PartitionReadySensor(
        task_id="wait_for_sales",
        source="sales",
        fail_on_failed=True,
        timeout=timedelta(hours=12),
    )

    @task
    def load_sales(data_interval_start: datetime | None = None) -> str:
        day = f"{data_interval_start:%Y-%m-%d}"
        src = _data() / "sales" / f"day={day}.csv"
        dst = _data() / "site-b" / "loaded" / f"day={day}.csv"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return str(dst)

    wait_for_sales >> load_sales()
