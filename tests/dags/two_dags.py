from minimap import DAG, task


@task
def hello():
    print("hello")
    return "hi"


with DAG("one"):
    hello()

with DAG("two"):
    hello()
