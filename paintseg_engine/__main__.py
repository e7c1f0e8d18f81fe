"""``paintseg``: one command, six doors. ``paintseg segment`` (one image), ``paintseg app`` (the
web app), ``paintseg serve`` (the HTTP service), ``paintseg to_coco`` (a folder dataset as COCO)
and ``paintseg results`` (one table from several runs) import only what they need; everything
else (``paintseg predict ...``) is the LightningCLI run of commands/predict.py, whose Lightning
import would slow the others down."""
from __future__ import annotations

import sys


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["segment"]:
        from .commands.segment import main as segment
        return segment(argv[1:])
    if argv[:1] == ["to_coco"]:
        from .commands.to_coco import main as to_coco
        return to_coco(argv[1:])
    if argv[:1] == ["results"]:
        from .commands.results import main as results
        return results(argv[1:])
    if argv[:1] == ["app"]:
        from .commands.app import main as app
        return app(argv[1:])
    if argv[:1] == ["serve"]:
        from .commands.serve import main as serve
        return serve(argv[1:])
    from .commands.predict import main as predict
    return predict(args)


if __name__ == "__main__":
    main()
