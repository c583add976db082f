#!/usr/bin/env python3
"""Parse a metrics exposition from stdin with prometheus_client's reference parsers.

usage: parse_metrics.py prometheus|openmetrics < exposition

Prints one JSON object: family name -> {"type": ..., "samples": [[name, labels, value], ...]}.
Exits non-zero (with the parser's error) when the exposition does not parse.
"""
import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus


def value(v):
    return v if math.isfinite(v) else str(v)


def main():
    fmt = sys.argv[1]
    text = sys.stdin.read()
    parse = {"prometheus": parse_prometheus, "openmetrics": parse_openmetrics}[fmt]
    out = {}
    for family in parse(text):
        if family.name in out:
            raise ValueError(f"family {family.name} appears twice")
        out[family.name] = {
            "type": family.type,
            "samples": [[s.name, s.labels, value(s.value)] for s in family.samples],
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
