"""Consumer DAG (Airflow instance B, isolated from A): load a day of sales
once partreg says it is ready.

Each run stands for one day, its data interval [data_interval_start,
data_interval_end), on the same timetable as the producer
(CronDataIntervalTimetable; see sales_producer.py), so both DAGs name the
same partition. The sensor and the load use that interval and nothing else:
{{ data_interval_start | ds }} for load.sh, not {{ ds }}, which on a manual
run names another day.

The sensor pokes with `partreg ready`: it reads the source's retained
summary from the broker and decides from it (it asks the agent only when
the summary is too long to decide from), exit 0 when the day is ready and
1 when it is not yet. retry_exit_code=1 makes only
that "not yet" poke again (mode "reschedule" frees the worker slot in
between); any other exit fails the task at once instead of re-poking for
12 hours: 2 a usage error, 3 the broker unreachable (within partreg's
--timeout, 10 s by default), 4 no answer, 5 an unknown source. `partreg
wait` is not used here: its --timeout bounds the whole wait, the broker
connection too, so an unreachable broker would hold each poke for as long.

Instance B only needs a broker that sees the agent's retained state: the
same broker as A, or one bridged to it. Its worker's environment carries
PARTREG_BROKER (and TLS options); reading readiness needs no token.

tests/integration/test_examples.sh runs this DAG in Apache Airflow 3.3.2
(`airflow dags test`) against a real broker and agent.
"""

from datetime import datetime, timedelta, timezone

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import DAG, CronDataIntervalTimetable

with DAG(
    dag_id="sales_consumer",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2023, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["partreg"],
) as dag:
    wait_for_sales = BashSensor(
        task_id="wait_for_sales",
        bash_command=(
            "partreg ready sales --start {{ data_interval_start | ts }} --end {{ data_interval_end | ts }}"
        ),
        retry_exit_code=1,
        mode="reschedule",
        poke_interval=60,
        timeout=timedelta(hours=12).total_seconds(),
    )
    load_sales = BashOperator(
        task_id="load_sales",
        bash_command='"$SALES/load.sh" {{ data_interval_start | ds }}',
        skip_on_exit_code=None,
    )
    wait_for_sales >> load_sales
