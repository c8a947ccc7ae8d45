#!/usr/bin/env bash
# Packs the server for a GPU machine that has CUDA and PyTorch in Python but no .NET and no network
# (issue 19; ../../docs/gpu.md): a self-contained linux-x64 build with TorchSharp's managed assembly and
# its native glue (libLibTorchSharp.so) but without libtorch's own libraries, which run.sh takes from
# that machine's PyTorch; the runner; and the fixtures the run reads.
#
# Usage: deploy/gpu/pack.sh [--out DIR] [--fixtures DIR] [--with-libtorch] [--no-fixtures]
#   --out            where llmserver-gpu/ and llmserver-gpu.tar.xz go [default: artifacts/gpu]
#   --fixtures       shared/fixtures [default: ../shared/fixtures beside the repository]
#   --with-libtorch  keep the CPU libtorch the build brings: the package then runs here too (run.sh --device cpu)
#   --no-fixtures    leave the fixtures out, to send them separately (the device tool's 64 MiB limit)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/artifacts/gpu" fixtures="$repo/../shared/fixtures" with_libtorch=0 with_fixtures=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --fixtures) fixtures=$2; shift 2 ;;
    --with-libtorch) with_libtorch=1; shift ;;
    --no-fixtures) with_fixtures=0; shift ;;
    *) echo "pack.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
stage="$out/llmserver-gpu"
rm -rf "$stage" && mkdir -p "$stage"
dotnet publish "$repo/src/Server" -c Release -r linux-x64 --self-contained -o "$stage/llmserver" -v quiet -nologo
if [ $with_libtorch = 0 ]; then
  # libtorch's own libraries, as the TorchSharp-cpu package brings them; the glue stays.
  (cd "$stage/llmserver" && rm -f libtorch.so libtorch_cpu.so libtorch_global_deps.so libtorch_python.so libc10.so libshm.so \
    libgomp-*.so* libaoti_custom_ops.so libbackend_with_compiler.so libjitbackend_test.so libnnapi_backend.so libtorchbind_test.so)
  if ls "$stage/llmserver" | grep -E '^lib(torch|c10)' | grep -v LibTorchSharp; then
    echo "pack.sh: libtorch libraries the list above does not know are still in the package" >&2; exit 1
  fi
fi
cp "$repo/deploy/gpu/run.sh" "$repo/deploy/gpu/reference.py" "$stage/"
if [ $with_fixtures = 1 ]; then
  mkdir -p "$stage/fixtures"
  cp -r "$fixtures/models" "$stage/fixtures/"
fi
tar -C "$out" -cf - llmserver-gpu | xz -6 -T0 > "$out/llmserver-gpu.tar.xz"
echo "$out/llmserver-gpu.tar.xz: $(du -h "$out/llmserver-gpu.tar.xz" | cut -f1) ($(du -sh "$stage" | cut -f1) unpacked; libtorch $([ $with_libtorch = 1 ] && echo kept || echo left out))"
