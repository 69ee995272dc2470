"""`python -m geri` runs the command line."""

from geri.cli import main

main()
