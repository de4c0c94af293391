#include "kiln/runtime/backend/cpu/isa_cpu.h"

#include <cstdlib>
#include <string_view>

namespace kiln::runtime::cpu {
namespace {

DotIsa detect() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    if (__builtin_cpu_supports("avx512vnni")) {
      return __builtin_cpu_supports("avx512bf16") ? DotIsa::kAvx512Bf16 : DotIsa::kAvx512Vnni;
    }
    return DotIsa::kAvx512;
  }
  if (__builtin_cpu_supports("avx512f")) return DotIsa::kAvx512;
  // F16C (every AVX2 CPU has it) converts the q8 scales.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    return DotIsa::kAvx2;
  }
#endif
  return DotIsa::kScalar;
}

DotIsa detect_capped() {
  DotIsa isa = detect();
  const char* cap = std::getenv("KILN_CPU_ISA");
  if (cap == nullptr) return isa;
  for (DotIsa c : {DotIsa::kScalar, DotIsa::kAvx2, DotIsa::kAvx512, DotIsa::kAvx512Vnni, DotIsa::kAvx512Bf16}) {
    if (std::string_view(cap) == dot_isa_name(c) && c < isa) isa = c;
  }
  return isa;
}

}  // namespace

DotIsa dot_isa() {
  static const DotIsa isa = detect_capped();
  return isa;
}

bool cpu_has_avx512bw() {
#if defined(__x86_64__)
  static const bool bw = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bw") != 0;
  }();
  return bw;
#else
  return false;
#endif
}

CpuIsa cpu_isa() {
  static const CpuIsa isa = dot_isa() >= DotIsa::kAvx512 ? CpuIsa::kAvx512
                            : dot_isa() == DotIsa::kAvx2 ? CpuIsa::kAvx2
                                                         : CpuIsa::kScalar;
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512: return "avx512";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kScalar: return "scalar";
  }
  return "?";
}

const char* dot_isa_name(DotIsa isa) {
  switch (isa) {
    case DotIsa::kAvx512Bf16: return "avx512_bf16";
    case DotIsa::kAvx512Vnni: return "avx512_vnni";
    case DotIsa::kAvx512: return "avx512";
    case DotIsa::kAvx2: return "avx2";
    case DotIsa::kScalar: return "scalar";
  }
  return "?";
}

}  // namespace kiln::runtime::cpu
