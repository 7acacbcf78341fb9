"""Several expand() arguments map over their cross product; the last one varies fastest (as Airflow)."""

from minimap import DAG, task

with DAG(dag_id="cross_product", max_active_tasks=4) as dag:

    @task(map_index_template="{{ region }}/{{ size }}")
    def build(region: str, size: str) -> str:
        return f"{region}-{size}"

    @task
    def show(images: list[str]) -> None:
        print(images)  # ['eu-small', 'eu-large', 'us-small', 'us-large']

    show(build.expand(region=["eu", "us"], size=["small", "large"]))
