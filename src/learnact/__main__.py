"""``python -m learnact`` == the ``learnact`` console script."""

from .cli import main

raise SystemExit(main())
