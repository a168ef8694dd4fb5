#!/usr/bin/env python3
"""docs/configuration-reference.md is generated from the one schema (`trestled
--schema-reference`). Without --write: exit 1 if the document differs from it (a test).
With --write: put the generated text between the document's markers."""
import subprocess
import sys

BEGIN = "<!-- schema-reference:begin (generated: scripts/schema_reference.py --write) -->\n"
END = "<!-- schema-reference:end -->\n"


def main():
    args = [a for a in sys.argv[1:] if a != "--write"]
    if len(args) != 2:
        sys.exit("usage: schema_reference.py [--write] TRESTLED docs/configuration-reference.md")
    trestled, readme = args
    generated = subprocess.run([trestled, "--schema-reference"], check=True,
                               capture_output=True, text=True).stdout
    text = open(readme, encoding="utf-8").read()
    try:
        head, rest = text.split(BEGIN, 1)
        current, tail = rest.split(END, 1)
    except ValueError:
        sys.exit(f"{readme}: the schema-reference markers are missing")
    if "--write" in sys.argv:
        open(readme, "w", encoding="utf-8").write(head + BEGIN + generated + END + tail)
        return
    if current != generated:
        sys.exit(f"{readme}: the configuration reference differs from the schema; run "
                 f"scripts/schema_reference.py --write {trestled} {readme}")
    print(f"{readme}: the configuration reference matches the schema")


if __name__ == "__main__":
    main()
