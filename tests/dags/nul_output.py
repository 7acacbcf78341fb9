"""A task that prints a NUL character and fails with one in its message, then one that returns one."""

from minimap import DAG, task

with DAG("nul_output") as dag:

    @task
    def shout():
        print("a\x00b")
        raise ValueError("bad\x00byte")

    @task
    def give():
        return "x\x00y"

    shout()
    give()
