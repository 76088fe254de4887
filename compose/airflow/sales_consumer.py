"""Consumer DAG (Airflow instance B, isolated from A): load a day of sales
once partreg says it is ready.

The sensor runs `partreg wait`, which follows the source's retained state on
the broker (no polling of anything) and exits 0 the moment the day is ready,
or 4 after its --timeout; the sensor then pokes again (mode "reschedule"
frees the worker slot in between) until its own timeout. Instance B only
needs a broker that sees the agent's retained state: the same broker as A,
or one bridged to it. Its worker's environment carries PARTREG_BROKER (and
TLS options); reading readiness needs no token.

tests/integration/test_examples.sh runs both bash_command strings against a
real broker and agent (templates replaced by a fixed day).
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.sensors.bash import BashSensor

with DAG(
    dag_id="sales_consumer",
    schedule="@daily",
    start_date=datetime(2023, 1, 1),
    catchup=False,
    tags=["partreg"],
) as dag:
    wait_for_sales = BashSensor(
        task_id="wait_for_sales",
        bash_command=(
            "partreg wait sales --start {{ data_interval_start }} --end {{ data_interval_end }} --timeout 600"
        ),
        mode="reschedule",
        poke_interval=60,
        timeout=timedelta(hours=12).total_seconds(),
    )
    load_sales = BashOperator(
        task_id="load_sales",
        bash_command='"$SALES/load.sh" {{ ds }}',
    )
    wait_for_sales >> load_sales
