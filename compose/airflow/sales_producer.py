"""Producer DAG (Airflow instance A): export a day of sales under a partreg lock.

`partreg run` locks the day [ds, ds + 1 day) of source "sales" for provider
"airflow_export" with a session whose MQTT Last Will aborts it, renews the
lease while the command runs, then unlocks it (metadata: duration, exit
status) when the command succeeds, or marks it failed with the command's exit
status when it fails; the task fails with that status. If the worker dies,
the broker publishes the Will and the day is failed within seconds.

The worker's environment carries the broker and the provider's token, never
the DAG or the command line:

    PARTREG_BROKER=mqtts://mq.site-a.example:8883
    PARTREG_CAFILE=/etc/ssl/certs/ca-certificates.crt
    PARTREG_TOKEN=<provider token of sales/airflow_export>   (or PARTREG_TOKEN_FILE)

tests/integration/test_examples.sh runs the bash_command below against a real
broker and agent (templates replaced by a fixed day).
"""

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="sales_producer",
    schedule="@daily",
    start_date=datetime(2023, 1, 1),
    catchup=False,
    tags=["partreg"],
) as dag:
    BashOperator(
        task_id="export_sales",
        bash_command=(
            "partreg run sales --provider airflow_export"
            " --start {{ data_interval_start }} --end {{ data_interval_end }} --ttl 300"
            ' -- "$SALES/export.sh" {{ ds }}'
        ),
    )
