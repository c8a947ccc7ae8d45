#!/usr/bin/env bash
# The one prepared run on a GPU machine (issue 19), or its CPU variant here. Every step runs under its
# own time limit and lands in one JSON file, whatever fails:
#   probe         which libtorch the server's glue (libLibTorchSharp.so) finds, and whether it loads
#   parity-*      bench parity over the fixtures: float32, bfloat16 (the greedy tokens and logprobs of reference.json)
#   bench-*       serve + bench at concurrency 1 and 256 on a GPT-2 124M and a Qwen2.5-0.5B shape (random weights made here)
#   transformers  transformers' generate on the same weights and prompt lengths (where Python has torch and transformers)
#
# Usage: run.sh [--device cuda|cpu] [--server DIR] [--libtorch DIR] [--fixtures DIR] [--out FILE] [--short] [--limit SECONDS]
#   --device    cuda (default): the glue is pointed at Python's PyTorch (torch/lib) through LD_LIBRARY_PATH;
#               cpu: the server's own libtorch, as packed by pack.sh --with-libtorch or a normal build
#   --server    the folder with the llmserver executable [default: ./llmserver beside this script]
#   --libtorch  a folder of libtorch's libraries for the glue [default: Python's torch/lib on cuda, the server's own on cpu]
#   --fixtures  shared/fixtures; only its models/ is read [default: ./fixtures beside this script]
#   --short     small shapes and few requests: the form CI runs
#   --limit     seconds for the whole run; each step gets what is left, at most its own share [default: 540]
set -u
here=$(cd "$(dirname "$0")" && pwd)
device=cuda server="$here/llmserver" libtorch="" fixtures="$here/fixtures" out="$PWD/gpu-run.json" short=0 limit=540
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --libtorch) libtorch=$2; shift 2 ;;
    --fixtures) fixtures=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --short) short=1; shift ;;
    --limit) limit=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
work=$(mktemp -d)
steps="$work/steps"; mkdir -p "$steps"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
llmserver="$server/llmserver"
export device server fixtures work steps llmserver

# One step: runs "$@" under a limit, keeps its exit code, time and the tail of its output; a step's
# own JSON result (if it writes $step_json) is embedded whole.
step() {
  local name=$1 share=$2; shift 2
  local left=$(( limit - ($(date +%s) - start) ))
  local budget=$(( share < left ? share : left ))
  local log="$steps/$name.log"; export step_json="$steps/$name.json"
  if [ "$budget" -le 5 ]; then
    printf '{"name":"%s","skipped":"no time left"}\n' "$name" > "$steps/$name.step"; return 1
  fi
  local t0=$(date +%s.%N) code
  # A fresh bash runs the step, so a shell function (exported below) can be one.
  timeout --kill-after=10 "$budget" bash -c '"$@"' step "$@" > "$log" 2>&1; code=$?
  local t1=$(date +%s.%N)
  python3 - "$name" "$code" "$t0" "$t1" "$log" "$step_json" "$budget" > "$steps/$name.step" <<'PY'
import json, os, sys
name, code, t0, t1, log, result, budget = sys.argv[1:8]
tail = open(log, errors="replace").read()[-4000:]
entry = {"name": name, "exit_code": int(code), "timed_out": int(code) in (124, 137), "limit_s": int(budget),
         "seconds": round(float(t1) - float(t0), 2), "output_tail": tail}
if os.path.exists(result):
    try: entry["result"] = json.load(open(result))
    except ValueError as e: entry["result_error"] = str(e)
print(json.dumps(entry))
PY
  return $code
}

# Where libtorch comes from. On the GPU machine: Python's PyTorch, whose CUDA libraries the glue links against.
if [ -z "$libtorch" ] && [ "$device" != cpu ]; then
  libtorch=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
fi
[ -n "$libtorch" ] && export LD_LIBRARY_PATH="$libtorch:${LD_LIBRARY_PATH:-}"

probe() {
  echo "device: $device; LD_LIBRARY_PATH: ${LD_LIBRARY_PATH:-}"
  python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1 | tail -1
  # A self-contained package has the glue beside the executable; a framework-dependent build under runtimes/.
  local glue; glue=$(find "$server" -maxdepth 4 -name libLibTorchSharp.so | head -1)
  echo "--- what the glue ($glue) links against (ldd):"
  ldd "$glue" 2>&1 | grep -E "torch|c10|not found" || true
  if python3 -c 'import torch' > /dev/null 2>&1; then
    # dlopen with every symbol resolved now: a glue built for another libtorch names the missing symbol here.
    python3 -c 'import ctypes, sys, torch; ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL | 2); print("glue loads beside Python torch")' "$glue" 2>&1 | tail -2
  fi
  echo "--- the server on $device (any tolerance: this step asks only whether models load and run):"
  "$llmserver" bench parity --fixtures "$fixtures/models" --device "$device" --tolerance 1000 2>&1 | tail -3
  return "${PIPESTATUS[0]}"
}
export -f probe
step probe 120 probe

parity_step() {  # dtype
  step "parity-$1" 180 "$llmserver" bench parity --fixtures "$fixtures/models" --device "$device" --dtype "$1" --result-json "$steps/parity-$1.json"
}
parity_step float32
parity_step bfloat16

# Random-weight checkpoints of the two shapes, made here (nothing is downloaded).
# The tokenizers are the fixture models' own: GPT-2's, and Qwen's (the Qwen3 fixture's, which Qwen2.5 shares).
# The short form's Qwen2 is the architecture's tiny shape, whose 50,304-token vocabulary takes GPT-2's.
gpt2_tokenizer="$fixtures/models/gpt2-random-2l-64d"
if [ $short = 1 ]; then gpt2_shape=124M; qwen_shape=tiny; qwen_tokenizer="$gpt2_tokenizer"; n1=2; n256=16; conc=16; len=16
else gpt2_shape=124M; qwen_shape=0.5B; qwen_tokenizer="$fixtures/models/qwen3-random-2l-64d"; n1=8; n256=512; conc=256; len=128; fi
# 256 streams of 256 tokens need room: on a GPU take half the memory left after the weights, on the CPU the default.
if [ "$device" = cpu ]; then kv_memory=1GiB; else kv_memory=0.5; fi
export n1 n256 conc len kv_memory
step random-models 120 bash -c "'$llmserver' random-model --shape $gpt2_shape --output '$work/gpt2' --tokenizer '$gpt2_tokenizer' --max-positions 1024 && \
  '$llmserver' random-model --arch qwen2 --shape $qwen_shape --output '$work/qwen2' --tokenizer '$qwen_tokenizer' --max-positions 1024"

bench_model() {  # name, model dir, port
  local name=$1 model=$2 port=$3
  "$llmserver" serve --model "$model" --device "$device" --port "$port" --max-num-seqs "$conc" --max-model-len 512 --kv-cache-memory "$kv_memory" > "$work/serve-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 240); do curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null 2>&1 && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done
  local ok=0
  "$llmserver" bench --base-url "http://127.0.0.1:$port" --num-prompts "$n1" --max-concurrency 1 --input-len "$len" --output-len "$len" --num-warmups 1 --result-json "$work/$name-c1.json" \
    && "$llmserver" bench --base-url "http://127.0.0.1:$port" --num-prompts "$n256" --max-concurrency "$conc" --input-len "$len" --output-len "$len" --result-json "$work/$name-c$conc.json" || ok=1
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  tail -5 "$work/serve-$name.log"
  python3 -c 'import json, sys; print(json.dumps({k: json.load(open(p)) for k, p in zip(("concurrency_1", "concurrency_" + sys.argv[3]), sys.argv[1:3])}))' \
    "$work/$name-c1.json" "$work/$name-c$conc.json" "$conc" > "$step_json"
  return $ok
}
export -f bench_model
step bench-gpt2 240 bench_model gpt2 "$work/gpt2" 8781
step bench-qwen2 300 bench_model qwen2 "$work/qwen2" 8782

# transformers' generate on the same weights: batch 1 and batch $conc, greedy, prompts of $len random tokens.
if python3 -c 'import torch, transformers' > /dev/null 2>&1; then
  step transformers 300 python3 "$here/reference.py" --device "$device" --models "$work/gpt2" "$work/qwen2" \
    --input-len "$len" --output-len "$len" --batch "$conc" --result-json "$step_json"
else
  printf '{"name":"transformers","skipped":"python3 here has no torch and transformers"}\n' > "$steps/transformers.step"
fi

python3 - "$out" "$device" "$short" "$steps" <<'PY'
import json, os, platform, sys
out, device, short, steps = sys.argv[1:5]
order = ["probe", "parity-float32", "parity-bfloat16", "random-models", "bench-gpt2", "bench-qwen2", "transformers"]
entries = [json.loads(open(os.path.join(steps, n + ".step")).read()) for n in order if os.path.exists(os.path.join(steps, n + ".step"))]
def ok(e):
    # transformers is optional (the CPU variant has no PyTorch in Python); every other step must run and succeed.
    return e.get("exit_code") == 0 or (e["name"] == "transformers" and "skipped" in e)
json.dump({"device": device, "short": short == "1", "host": platform.node(), "steps": entries, "passed": len(entries) == len(order) and all(map(ok, entries))},
          open(out, "w"), indent=2)
print(f"{out}: " + ", ".join(f"{e['name']} {'skipped' if 'skipped' in e else 'ok' if e['exit_code'] == 0 else 'FAILED'}" for e in entries))
sys.exit(0 if len(entries) == len(order) and all(map(ok, entries)) else 1)
PY
