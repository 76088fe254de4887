# SPDX-License-Identifier: MIT
"""Asset-driven DAG (Airflow instance B), with the partreg provider: a run for
every day of "sales_totals" that becomes ready, whenever that is.

The asset's AssetWatcher runs PartitionEventTrigger in B's triggerer: it
follows the events of source "sales_totals" on the broker (no polling) and
turns every `unlocked` event (a partition became ready) into an asset event,
whose extra["payload"] is the partreg event: source, provider, start, end,
fence, version, seq. Airflow then starts a run of this DAG, which reads the
day from the event: the interval the producer locked names the file read.
Events lost while B's triggerer or broker connection was down are read back
from the agent's history (the trigger keeps the last seq it fired in the
asset's state store), so no ready day is missed.

B needs only a broker that sees the agent (no token):

    AIRFLOW_CONN_PARTREG_DEFAULT='{"conn_type": "partreg", "host": "mqtts://mq.site-b.example:8883"}'

and a triggerer (`airflow triggerer`) next to its scheduler.
tests/integration/test_airflow.sh runs it in Apache Airflow 3.3.2.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task
from partreg.airflow import PartitionEventTrigger


def _data() -> Path:
    return Path(os.environ.get("PARTREG_EXAMPLE_DATA", "/tmp/partreg-example"))


sales_totals = Asset(
    name="partreg_sales_totals",
    uri="partreg://sales_totals",
    watchers=[
        AssetWatcher(
            name="sales_totals_ready",
            trigger=PartitionEventTrigger(source="sales_totals", types=["unlocked"]),
        )
    ],
)

with DAG(
    dag_id="partreg_asset_watcher",
    schedule=[sales_totals],
    start_date=datetime(2023, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["partreg"],
) as dag:

    @task
    def report_totals(triggering_asset_events: Any = None) -> list[str]:
        """One line per day that became ready (several events may come
        together in one run)."""
        done = []
        for event in triggering_asset_events[sales_totals]:
            ready = event.extra["payload"]
            day = ready["start"][:10]
            total = json.loads((_data() / "totals" / f"day={day}.json").read_text())["total"]
            out = _data() / "site-b" / "reports" / f"day={day}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(
                f"{day}: total {total} (version {ready['version']}, fence {ready['fence']})\n"
            )
            done.append(str(out))
        return done

    report_totals()
