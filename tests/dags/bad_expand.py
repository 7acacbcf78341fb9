from minimap import DAG, task

with DAG("bad_expand") as dag:

    @task
    def t(x):
        return x

    t.expand(x="abc")
