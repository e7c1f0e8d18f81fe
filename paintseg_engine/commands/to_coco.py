"""Write a folder dataset the engine reads as a COCO instances file, to score it as COCO (mask AP).

    paintseg to_coco --root ../shared/datasets/GrabCut --layout grabcut --out GrabCut.json
"""
from __future__ import annotations

import argparse
import sys

from ..data.readers import LAYOUTS
from ..data.to_coco import folder_to_coco
from ..imageio import write_json_atomic


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paintseg to_coco", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the dataset's folder")
    parser.add_argument("--layout", default="folder", choices=sorted(LAYOUTS))
    parser.add_argument("--split", default="val", help="PASCAL VOC's image list")
    parser.add_argument("--category", default="object", help="the one category's name")
    parser.add_argument("--out", required=True, help="the annotations file to write")
    options = parser.parse_args(args)
    try:
        data, left_out = folder_to_coco(options.root, options.layout, options.split, options.category)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"paintseg to_coco: {err}")
    write_json_atomic(options.out, data)
    print(f"{options.out}: {len(data['images'])} images, {len(data['annotations'])} objects")
    if left_out:
        print(f"{len(left_out)} item(s) left out, first: {left_out[0]}", file=sys.stderr)
