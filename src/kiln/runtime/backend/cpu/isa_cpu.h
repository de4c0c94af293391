// The instruction sets the CPU kernels are written for, chosen once at run time. Every f32 kernel
// gives the same bits on each of them (tests compare them), so the choice changes speed only.
//
// KILN_CPU_ISA=scalar|avx2|avx512|avx512_vnni|avx512_bf16 caps what is detected, to run (and
// test) the fallbacks on a machine that has more.
#pragma once

namespace kiln::runtime::cpu {

enum class CpuIsa { kScalar, kAvx2, kAvx512 };
CpuIsa cpu_isa();  // the best this machine supports (checked once)
const char* cpu_isa_name(CpuIsa isa);

// The low-precision GEMMs' levels (gemm_lowp_cpu.h): kAvx512Vnni adds vpdpbusd (q8), kAvx512Bf16
// adds vdpbf16ps (bf16). Every CPU with AVX-512 BF16 has VNNI, so the levels are ordered.
enum class DotIsa { kScalar, kAvx2, kAvx512, kAvx512Vnni, kAvx512Bf16 };
DotIsa dot_isa();  // the best this machine supports (checked once)
// kAvx512 is AVX-512F; the q8 kernel of that level also needs AVX-512BW (every AVX-512 CPU but
// Xeon Phi has it).
bool cpu_has_avx512bw();
const char* dot_isa_name(DotIsa isa);

}  // namespace kiln::runtime::cpu
