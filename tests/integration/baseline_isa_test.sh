#!/usr/bin/env bash
# The binary runs on any x86-64 CPU: outside the SIMD kernels (functions compiled with target attributes, all
# named *avx2* or *avx512*, or inside a simd_avx2/simd_avx512 namespace), it holds no VEX- or EVEX-encoded
# instruction (AVX, AVX2, FMA, F16C, BMI, AVX-512) and no ymm/zmm register, so a CPU without AVX2 only meets
# them after exec/cpu_features chose a kernel set. Then the whole forward pass on the portable set.
source "$(dirname "$0")/lib.sh"

# Every function of the binary that uses a VEX/EVEX instruction or a ymm/zmm register, one name a line.
vex_functions() {
  objdump -d --no-show-raw-insn "$SLMOPT" | awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
    NF >= 2 {
      op = $2
      if (op ~ /^v/ || op ~ /^k(mov|and|or|xor|not|test|shift|add|unpck)/ ||
          op ~ /^(andn|bextr|blsi|blsmsk|blsr|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx)$/ || $0 ~ /%[yz]mm/)
        print fn
    }' | sort -u
}

test_no_vex_outside_the_dispatched_kernels() {
  [ "$(uname -m)" = x86_64 ] || return 0
  command -v objdump >/dev/null || { echo "    (objdump missing: skipped)"; return 0; }
  vex_functions >"$WORK/vex"
  # The kernels are there (the check reads real code) ...
  grep -q 'avx2' "$WORK/vex" || fail "no AVX2 kernel found in the binary"
  grep -q 'avx512' "$WORK/vex" || fail "no AVX-512 kernel found in the binary"
  # ... and nothing else uses those instructions.
  if grep -v -e avx2 -e avx512 "$WORK/vex" >"$WORK/stray"; then
    sed 's/^/    baseline function with VEX\/EVEX code: /' "$WORK/stray" | head -20
    fail "$(wc -l <"$WORK/stray") functions outside the kernels use AVX instructions"
  fi
}

# nll of `eval --json` (full precision) with the kernel set SLMOPT_KERNEL names (empty: the best one).
eval_nll() {
  SLMOPT_KERNEL=$1 expect_exit 0 "$SLMOPT" -q eval "$2" --text "$MODELS/data/kjv-calib.txt" --ctx 64 \
    --max-windows 2 --json
  grep '"nll"' "$WORK/out"
}

# The stored BF16 model and an IQ4_XS GGUF of it (the i-quant decoders): the portable set gives the same bits.
test_portable_kernels_evaluate_like_the_simd_ones() {
  expect_exit 0 "$SLMOPT" -q quantize "$MODELS/llama-5m-kjv" --type IQ4_XS -o "$WORK/iq4xs.gguf"
  local model simd portable
  for model in "$MODELS/llama-5m-kjv" "$WORK/iq4xs.gguf"; do
    simd=$(eval_nll "" "$model")
    portable=$(eval_nll portable "$model")
    [ -n "$simd" ] && [ "$simd" = "$portable" ] || fail "$model: best set $simd, portable $portable"
  done
}

run_tests
