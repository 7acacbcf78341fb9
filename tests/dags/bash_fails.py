"""BashOperator's exit codes: non-zero fails the attempt, 99 skips it."""

from minimap import DAG, BashOperator

with DAG("bash_fails") as dag:
    BashOperator(task_id="fails", bash_command="echo about to fail; exit 3")
    BashOperator(task_id="skips", bash_command="exit 99")
