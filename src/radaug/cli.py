"""Command line: ``radaug verify STUDY_DIR`` and ``radaug config-doc``."""

from __future__ import annotations

import argparse
import sys

from .config import schema_markdown
from .errors import RadaugError
from .provenance import verify_study


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="radaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="re-hash a study folder or unpacked bundle against its manifest")
    verify.add_argument("study_dir")
    sub.add_parser("config-doc", help="print the config key reference (config/README.md) from the schema")
    args = parser.parse_args(argv)
    if args.command == "config-doc":
        print(schema_markdown(), end="")
        return 0
    try:
        problems = verify_study(args.study_dir)
    except RadaugError as exc:
        print(f"radaug verify: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"{args.study_dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
