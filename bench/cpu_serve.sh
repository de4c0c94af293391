#!/usr/bin/env bash
# The server side of the CPU comparison (docs/cpu-dtypes.md): `kiln serve` at each CPU weight
# dtype and, given llama.cpp's binaries and GGUF files, llama-server on the same checkpoint, each
# loaded by `kiln bench serve` at 1 stream and at 32 streams (128 prompt / 128 output tokens,
# streamed, ignore_eos) through bench/serve/sweep.sh, in the same run. Prints a Markdown table.
#
# usage: bench/cpu_serve.sh KILN MODEL_DIR [LLAMA_BIN_DIR BF16.gguf Q8_0.gguf]
#   env: THREADS (2), DTYPES ("bf16 q8"), STREAMS (32), PER_CLIENT (2: requests per stream),
#        OUT (a temporary directory: JSON reports)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kiln=${1:?usage}; model=${2:?usage}; llama=${3:-}
threads=${THREADS:-2}; dtypes=${DTYPES:-bf16 q8}; streams=${STREAMS:-32}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

sweep() {  # name, then sweep.sh arguments
  local name=$1; shift
  "$here/serve/sweep.sh" --kiln "$kiln" --levels "1 $streams" --requests-per-client "${PER_CLIENT:-2}" --out "$out/$name" "$@" \
    -- --endpoint completions > "$out/$name.txt" 2>&1 || { echo "cpu_serve.sh: $name failed (see $out/$name.txt)" >&2; return 1; }
}

for d in $dtypes; do
  sweep "kiln-$d" --model "$model" --serve-args "--dtype $d --engine-threads $threads"
done

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
if [ -n "$llama" ]; then
  for g in "$4:bf16" "$5:q8_0"; do
    gguf=${g%:*}; name=llama-${g##*:}
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # One slot per stream, each with room for its 256 tokens; continuous batching is on by default.
    "$llama/llama-server" -m "$gguf" -t "$threads" -tb "$threads" -np "$streams" -c $((streams * 320)) \
      --host 127.0.0.1 --port "$port" --no-webui > "$out/$name-server.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
    sweep "$name" --url "http://127.0.0.1:$port" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
fi

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $threads threads; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$out" "$streams" <<'PY'
import glob, json, os, sys
out, streams = sys.argv[1], sys.argv[2]
print(f"| server | 1 stream (out tok/s) | {streams} streams (out tok/s) | {streams} streams TTFT p50 (ms) | TTFT p90 (ms) |")
print("|---|---:|---:|---:|---:|")
for d in sorted(glob.glob(os.path.join(out, "*/"))):
    name = os.path.basename(d.rstrip("/"))
    def res(c):
        try:
            return json.load(open(os.path.join(d, f"concurrency_{c}.json")))["results"]
        except (OSError, KeyError, ValueError):
            return None
    one, many = res(1), res(streams)
    f = lambda r, k: f"{r[k]:,.0f}" if r else "-"
    t = lambda r, p: f"{r['ttft_ms'][p]:,.0f}" if r else "-"
    print(f"| {name} | {f(one, 'output_throughput')} | {f(many, 'output_throughput')} | {t(many, 'p50')} | {t(many, 'p90')} |")
PY
echo
echo "JSON reports: $out" >&2
