// The instruction sets the CPU kernels are written for, chosen once at run time. Every kernel
// gives the same bits on each of them (tests compare them), so the choice changes speed only.
#pragma once

namespace kiln::runtime::cpu {

enum class CpuIsa { kScalar, kAvx2, kAvx512 };
CpuIsa cpu_isa();  // the best this machine supports (checked once)
const char* cpu_isa_name(CpuIsa isa);

}  // namespace kiln::runtime::cpu
