"""Producer DAG (Airflow instance A): export a day of sales under a partreg lock.

Each run stands for one day, its data interval [data_interval_start,
data_interval_end). The timetable is CronDataIntervalTimetable: in Airflow 3
a plain schedule="@daily" is a CronTriggerTimetable, whose runs have
data_interval_start == data_interval_end, an empty interval partreg refuses.
The scheduled run of day D starts once D is over, at D + 1 day 00:00 UTC.

`partreg run` locks that interval of source "sales" for provider
"airflow_export" with a session whose MQTT Last Will aborts it, renews the
lease while the command runs, then unlocks it (metadata: duration, exit
status) when the command succeeds, or marks it failed with the command's exit
status when it fails; the task fails with that status (skip_on_exit_code=None:
an export that exits 99 fails the day, so it must fail the task too, not skip
it). If the worker dies, the broker publishes the Will and the day is failed
within seconds.

The templates render with `| ts` (2023-01-01T00:00:00+00:00): plain
{{ data_interval_start }} renders with a space, two arguments to the shell.
export.sh gets the interval's first day, {{ data_interval_start | ds }}, not
{{ ds }}: on a manual run (`airflow dags trigger`, `airflow dags test`) the
logical date is the trigger time and the interval the last whole day before
it, so ds names another day than the one locked.

The worker's environment carries the broker and the provider's token, never
the DAG or the command line:

    PARTREG_BROKER=mqtts://mq.site-a.example:8883
    PARTREG_CAFILE=/etc/ssl/certs/ca-certificates.crt
    PARTREG_TOKEN=<provider token of sales/airflow_export>   (or PARTREG_TOKEN_FILE)

tests/integration/test_examples.sh runs this DAG in Apache Airflow 3.3.2
(`airflow dags test`) against a real broker and agent.
"""

from datetime import datetime, timezone

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronDataIntervalTimetable

with DAG(
    dag_id="sales_producer",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2023, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["partreg"],
) as dag:
    BashOperator(
        task_id="export_sales",
        bash_command=(
            "partreg run sales --provider airflow_export"
            " --start {{ data_interval_start | ts }} --end {{ data_interval_end | ts }} --ttl 300"
            ' -- "$SALES/export.sh" {{ data_interval_start | ds }}'
        ),
        skip_on_exit_code=None,
    )
