#!/usr/bin/env bash
# Print the CMAKE_ARGS for compiling llama-cpp-python on this machine.
#
# Why: llama.cpp's AMX matrix kernel crashes (SIGSEGV on the first generation) when it is
# built with GCC 12 on Xeons that have AMX, because the compiler drops the stores that fill
# the tile configuration before `ldtilecfg`.  A native build (-march=native) turns that
# kernel on wherever the CPU has AMX.  So we build without native tuning and switch on, one
# by one, exactly the x86 extensions that /proc/cpuinfo lists -- never AMX.  The result runs
# as fast as a native build on AVX-512 machines and cannot use an instruction the CPU lacks.
#
# Usage:  CMAKE_ARGS="$(bash scripts/llamacpp_cmake_args.sh)" pip install 'llama-cpp-python[server]==0.3.36'
set -euo pipefail
if [[ "$(uname -m)" != "x86_64" ]] || [[ ! -r /proc/cpuinfo ]]; then
    echo ""   # not x86-64 Linux: llama.cpp's own defaults are fine
    exit 0
fi
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# cpuinfo flag -> ggml CMake option
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI \
            avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    flag=${pair%%:*}; option=${pair##*:}
    if [[ "$cpu_flags" == *" $flag "* ]]; then args+=" -DGGML_${option}=ON"; else args+=" -DGGML_${option}=OFF"; fi
done
echo "$args"
