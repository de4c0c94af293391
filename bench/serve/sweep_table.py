#!/usr/bin/env python3
"""Prints a Markdown table from `kiln bench serve --json-out` reports, one row per report, with
output throughput relative to the first row."""
import json
import sys


def main(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        s, r = doc["settings"], doc["results"]
        load = s["concurrency"] if s.get("concurrency") is not None else f'rate {s["request_rate"]}'
        rows.append((load, r))
    if not rows:
        return 1
    base = rows[0][1]["output_throughput"] or 1.0
    print("| concurrency | requests | req/s | output tok/s | vs first | TTFT p50 (ms) | TTFT p99 (ms) "
          "| TPOT p50 (ms) | ITL p99 (ms) | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for load, r in rows:
        print(f'| {load} | {r["completed"]} | {r["request_throughput"]:.2f} | {r["output_throughput"]:.1f} '
              f'| {r["output_throughput"] / base:.2f}x | {r["ttft_ms"]["p50"]:.0f} | {r["ttft_ms"]["p99"]:.0f} '
              f'| {r["tpot_ms"]["p50"]:.1f} | {r["itl_ms"]["p99"]:.1f} | {r["failed"]} |')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
