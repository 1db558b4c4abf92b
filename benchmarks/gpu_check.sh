#!/usr/bin/env bash
# termllm's GPU path measured on a lent GPU machine (the device tool), in one call.
#
#   Here, in the project root:  bash benchmarks/gpu_check.sh prepare
#   Then the device tool:       carry [".gpu"], command `bash benchmarks/gpu_check.sh run`,
#                               timeout_s 570; give the machine back after.
#
# `prepare` fills .gpu/ (git-ignored) with ../shared/tools/gpu/prepare.sh (llama-cpp-python's
# trimmed source, the random-model generator) and Python 3.12 wheels of termllm's own
# dependencies, as pyproject.toml pins them: the GPU machine reaches no package registry.
#
# `run` builds llama-cpp-python with CUDA, keeping its build tree so that llama-bench is then
# built from the same objects (a second CUDA build would not fit the device time), writes a
# random-weight 1.1 B llama model (nothing over 64 MiB can be carried, so no real model), and
# runs, each under its own time limit so that one failing leaves the rest: `doctor`, the
# llama-bench comparison (prompt, decode, `ask` overhead), `termllm bench` with every layer on
# the GPU, the piped-file prefix cache, the restore of saved conversations, and `termllm bench`
# on the CPU alone.
# Results land in $OUT as JSON and text.
set -u
mode=${1:-}

prepare() {
    set -euo pipefail
    bash ../shared/tools/gpu/prepare.sh
    rm -rf .gpu/whl
    local requirements
    requirements=$(python3 -c '
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(d for d in project["dependencies"] if not d.startswith("llama-cpp-python")))')
    # llama-cpp-python's own dependencies are added by hand: its wheel is built --no-deps there.
    mapfile -t wanted <<< "$requirements"
    python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .gpu/whl \
        "${wanted[@]}" numpy jinja2 diskcache typing-extensions
    du -sh .gpu
}

run() {
    set -x
    nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
    tar xzf .gpu/llama_cpp_python-src.tar.gz -C /tmp
    local src model bench_binary cmake_bin
    src=$(ls -d /tmp/llama_cpp_python-*)
    export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90-real" CMAKE_BUILD_PARALLEL_LEVEL=16
    SECONDS=0
    if ! python3 -m pip wheel -q --no-build-isolation --no-deps \
        --config-settings=build-dir=/tmp/lcb -w /tmp/wh "$src" > "$OUT/build.log" 2>&1; then
        tail -20 "$OUT/build.log"
        exit 1
    fi
    echo "CUDA build of llama-cpp-python: $SECONDS s"
    python3 -m pip install -q --no-deps --no-compile --target /tmp/site /tmp/wh/*.whl \
        .gpu/whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD TERMLLM_HOME=/tmp/termllm-home
    model=/tmp/rand1b.gguf
    PYTHONPATH=$src/vendor/llama.cpp/gguf-py python3 .gpu/gen_random_gguf.py \
        "$src/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf" "$model" 2048 16 32 8 5632
    timeout 60 python3 -m termllm doctor > "$OUT/doctor.txt" 2>&1
    timeout 60 python3 -m termllm doctor -m "$model" > "$OUT/doctor_model.txt" 2>&1

    # llama-bench from the wheel's build tree: only its own sources are compiled.
    cmake_bin=$(sed -n 's/^CMAKE_COMMAND:INTERNAL=//p' /tmp/lcb/CMakeCache.txt)
    SECONDS=0
    timeout 150 bash -c "'$cmake_bin' -S '$src' -B /tmp/lcb -DLLAVA_BUILD=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF > '$OUT/bench_build.log' 2>&1 \
        && '$cmake_bin' --build /tmp/lcb --target llama-bench >> '$OUT/bench_build.log' 2>&1"
    echo "llama-bench build: rc $? in $SECONDS s"
    bench_binary=$(find /tmp/lcb -name llama-bench -type f -perm -u+x | head -1)
    if [ -n "$bench_binary" ]; then
        timeout 150 python3 benchmarks/llama_bench.py --runs 2 --threads 16 -m "$model" \
            --bench-binary "$bench_binary" --json > "$OUT/llama_bench.json"
    else
        timeout 120 python3 benchmarks/llama_bench.py --runs 2 --threads 16 -m "$model" \
            --no-llama-bench --json > "$OUT/llama_bench.json"
    fi
    timeout 60 python3 -m termllm bench -m "$model" --json > "$OUT/bench_gpu.json"
    export TERMLLM_BENCH_MODEL=$model
    timeout 90 python3 benchmarks/pipe_cache.py --runs 2 --threads 16 --json > "$OUT/pipe_cache.json"
    timeout 100 python3 benchmarks/restore_speed.py --runs 2 --threads 16 --histories 1500,3500 \
        --ctx 4096 --json > "$OUT/restore_speed.json"
    timeout 60 python3 -m termllm bench -m "$model" --gpu-layers 0 --threads 16 --json \
        > "$OUT/bench_cpu.json"
    head -c 3000 "$OUT"/*.json "$OUT"/doctor*.txt
}

case $mode in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash benchmarks/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
