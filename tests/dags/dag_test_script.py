"""`dag.test()` as Airflow users call it: run this file with python."""

from minimap import DAG, task

with DAG("dag_test") as dag:

    @task
    def double(x):
        return 2 * x

    @task
    def total(values):
        return sum(values)

    total(double.expand(x=[1, 2, 3]))


if __name__ == "__main__":
    run = dag.test()
    print("returned", run.state.value)
