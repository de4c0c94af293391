#!/usr/bin/env bash
# kiln's CPU engine at f32 / bf16 / q8 against llama.cpp at f32 / bf16 / Q8_0 on one checkpoint,
# in the same run: prefill of a 128-token prompt and decode of one sequence, best of REPEAT runs
# each (other work on the machine only ever makes a run slower). Prints a Markdown table.
#
# usage: bench/cpu_dtypes.sh KILN MODEL_DIR [LLAMA_BIN_DIR F32.gguf BF16.gguf Q8_0.gguf]
#   env: THREADS (2), REPEAT (3), GEN (64: decode tokens per run)
# docs/cpu-dtypes.md has the figures and how the GGUF files are made.
set -euo pipefail
kiln=${1:?usage}; model=${2:?usage}; llama=${3:-}
threads=${THREADS:-2}; repeat=${REPEAT:-3}; gen=${GEN:-64}

best() { sort -g | tail -1; }
kiln_run() {  # dtype -> "prefill decode" tok/s, best of $repeat
  local pp=() tg=() out
  for _ in $(seq "$repeat"); do
    out=$("$kiln" bench --model "$model" --device cpu --dtype "$1" --threads "$threads" --prompt-len 128 \
      --gen-len $((gen + 1)) --warmup 1 | tail -1)
    pp+=("$(jq -r .prefill_tokens_per_s <<<"$out")"); tg+=("$(jq -r .decode_tokens_per_s <<<"$out")")
  done
  echo "$(printf '%s\n' "${pp[@]}" | best) $(printf '%s\n' "${tg[@]}" | best)"
}
llama_run() {  # gguf -> "prefill decode" tok/s, best of $repeat
  local pp=() tg=() csv
  for _ in $(seq "$repeat"); do
    # CSV fields are quoted; n_prompt,n_gen,n_depth pick the row, avg_ts is the next to last field.
    csv=$("$llama/llama-bench" -m "$1" -p 128 -n "$gen" -t "$threads" -r 1 -o csv 2>/dev/null | tr -d '"')
    pp+=("$(grep ',128,0,0,' <<<"$csv" | awk -F, '{print $(NF-1)}' | head -1)")
    tg+=("$(grep ",0,$gen,0," <<<"$csv" | awk -F, '{print $(NF-1)}' | head -1)")
  done
  echo "$(printf '%s\n' "${pp[@]}" | best) $(printf '%s\n' "${tg[@]}" | best)"
}

declare -A r
for d in f32 bf16 q8; do r[kiln_$d]=$(kiln_run "$d"); done
if [ -n "$llama" ]; then
  r[llama_f32]=$(llama_run "$4"); r[llama_bf16]=$(llama_run "$5"); r[llama_q8]=$(llama_run "$6")
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $threads threads; best of $repeat"
echo
echo "| | kiln f32 | kiln bf16 | kiln q8 | llama.cpp f32 | llama.cpp bf16 | llama.cpp Q8_0 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for i in 1 2; do
  name=$([ $i = 1 ] && echo "prefill 128 (tok/s)" || echo "decode, one sequence (tok/s)")
  row="| $name"
  for k in kiln_f32 kiln_bf16 kiln_q8 llama_f32 llama_bf16 llama_q8; do
    v=$(cut -d' ' -f$i <<<"${r[$k]:-- -}"); row+=" | $(printf '%.0f' "$v" 2>/dev/null || echo -)"
  done
  echo "$row |"
done
