"""Command line: ``radaug verify STUDY_DIR``, ``radaug config-doc`` and ``radaug study-name CONFIG``."""

from __future__ import annotations

import argparse
import sys

from .config import load_config, schema_markdown
from .errors import RadaugError
from .provenance import verify_study


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="radaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="re-hash a study folder or unpacked bundle against its manifest")
    verify.add_argument("study_dir")
    sub.add_parser("config-doc", help="print the config key reference (config/README.md) from the schema")
    name = sub.add_parser("study-name", help="print study.name of a config file, validated as the workflow does "
                                             "(its results are in results/<name>)")
    name.add_argument("config")
    args = parser.parse_args(argv)
    if args.command == "config-doc":
        print(schema_markdown(), end="")
        return 0
    if args.command == "study-name":
        try:  # the workflow's loader and checks; relative paths resolve against the working directory, as there
            print(load_config(args.config, base_dir=".")["study"]["name"])
        except RadaugError as exc:
            print(f"radaug study-name: {exc}", file=sys.stderr)
            return 2
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
