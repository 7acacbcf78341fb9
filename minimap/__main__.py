"""`python -m minimap` is the `minimap` command."""

from minimap.cli import main

main(prog_name="minimap")
