#!/usr/bin/env python3
"""Parse an exposition with the reference Python parser and print it as JSON.

usage: parse_exposition.py prometheus|openmetrics FILE

Prints {"families": [{"name", "type", "help", "samples": [[name, {labels}, value]]}]};
values are printed with repr() so NaN and infinities survive JSON. Exits non-zero (with the
parser's message) if the reference parser rejects the input.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parse = {"prometheus": parse_prometheus, "openmetrics": parse_openmetrics}[fmt]
    families = []
    for fam in parse(text):
        samples = [[s.name, dict(s.labels), repr(float(s.value))] for s in fam.samples]
        families.append({"name": fam.name, "type": fam.type, "help": fam.documentation, "samples": samples})
    json.dump({"families": families}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the parser's own exception types vary by version
        print(f"reference parser rejected the input: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
