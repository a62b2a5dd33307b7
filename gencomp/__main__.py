"""`python -m gencomp`: the same command line as the `gencomp` script."""

from .cli import main

raise SystemExit(main())
