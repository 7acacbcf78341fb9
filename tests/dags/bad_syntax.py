from minimap import DAG

with DAG("broken") as dag
    pass
