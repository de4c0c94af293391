#!/usr/bin/env bash
# Runs `kiln bench serve` at several concurrencies against one server and prints a Markdown table
# (bench/serve/sweep_table.py) of throughput and latency per level, with the speed-up over the
# first level. Either point it at a running server (--url) or give it a model directory (--model)
# and it starts `kiln serve` on a free loopback port for the sweep and stops it afterwards.
#
#   bench/serve/sweep.sh --model /tmp/bench-100m --levels "1 4 8 16 32 64" --out bench/results/sweep
#   bench/serve/sweep.sh --url http://127.0.0.1:8000 --levels "1 32" -- --endpoint completions
#
# Options: --kiln PATH (default build/release/apps/kiln/kiln), --url URL, --model DIR,
# --serve-args "ARGS" (extra `kiln serve` flags), --levels "N ...", --requests-per-client N
# (default 4; each level sends N x concurrency requests, at least 8), --prompt-tokens N (128),
# --output-tokens N (128), --out DIR (JSON reports; default a temporary directory). Arguments
# after -- go to every `kiln bench serve`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
kiln="$root/build/release/apps/kiln/kiln"
url=""
model=""
serve_args=""
levels="1 4 8 16 32 64"
per_client=4
prompt_tokens=128
output_tokens=128
out=""
extra=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --kiln) kiln="$2"; shift 2 ;;
    --url) url="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --serve-args) serve_args="$2"; shift 2 ;;
    --levels) levels="$2"; shift 2 ;;
    --requests-per-client) per_client="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --output-tokens) output_tokens="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "sweep.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

[[ -x "$kiln" ]] || { echo "sweep.sh: no kiln binary at $kiln (build it or pass --kiln)" >&2; exit 2; }
if [[ -z "$url" && -z "$model" ]]; then
  echo "sweep.sh: give --url of a running server or --model DIR to start kiln serve" >&2
  exit 2
fi
if [[ -z "$out" ]]; then out="$(mktemp -d)"; fi
mkdir -p "$out"

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT

if [[ -n "$model" ]]; then
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  url="http://127.0.0.1:$port"
  # shellcheck disable=SC2086  # serve_args is a list of flags
  "$kiln" serve --model "$model" --host 127.0.0.1 --port "$port" $serve_args >"$out/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "sweep.sh: kiln serve exited; see $out/serve.log" >&2; exit 1; }
    sleep 0.1
  done
fi

reports=()
for c in $levels; do
  n=$((c * per_client))
  if (( n < 8 )); then n=8; fi
  report="$out/concurrency_$c.json"
  echo "sweep.sh: concurrency $c, $n requests" >&2
  "$kiln" bench serve --url "$url" --concurrency "$c" --num-requests "$n" --warmup 1 \
    --prompt-tokens "$prompt_tokens" --output-tokens "$output_tokens" --quiet --json-out "$report" \
    "${extra[@]}" >"$out/concurrency_$c.txt"
  reports+=("$report")
done

cmd="bench/serve/sweep.sh --levels \"$levels\" --requests-per-client $per_client"
cmd+=" --prompt-tokens $prompt_tokens --output-tokens $output_tokens${model:+ --model $model}"
if [[ ${#extra[@]} -gt 0 ]]; then cmd+=" -- ${extra[*]}"; fi
echo "Command: $cmd"
echo
python3 "$here/sweep_table.py" "${reports[@]}"
echo
echo "JSON reports: $out" >&2
