from minimap import DAG
import no_such_module_anywhere  # noqa: F401

with DAG("never") as dag:
    pass
