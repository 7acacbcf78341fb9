"""What fails an attempt, with a message naming it: a non-dict multiple_outputs result, too many items under
a key mapped over, an undefined template variable, a failing bash command, bash's skip exit code."""

from minimap import DAG, BashOperator, task

with DAG("airflow_errors", max_map_length=3) as dag:

    @task(multiple_outputs=True)
    def not_dict():
        return [1, 2]

    @task
    def big() -> dict[str, list[int]]:
        return {"xs": list(range(5))}

    @task
    def ident(x):
        return x

    not_dict()
    ident.expand(x=big()["xs"])
    BashOperator(task_id="undefined", bash_command="echo {{ nope }}")
    BashOperator(task_id="fails", bash_command="echo about to fail; exit 3")
    BashOperator(task_id="skips", bash_command="exit 99")
