"""python -m export: see export/README.md."""
from __future__ import annotations

import sys

from paintseg_engine.pretrained import MissingWeightsError

from .engine import export_engine
from .settings import ExportError, parse_settings


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    try:
        export_engine(settings)
    except (ExportError, MissingWeightsError) as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
