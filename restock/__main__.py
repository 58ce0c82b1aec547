"""`python -m restock …`."""

from restock.cli import main

raise SystemExit(main())
