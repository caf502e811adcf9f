// AVX-512 (F/BW/VL) kernels without VNNI; see quant_avx512_body.h.
#define KNS avx512
#define KTARGET "avx512f,avx512bw,avx512vl,f16c,fma"
#define KVNNI 0
#define KVBMI 0
#include "kernels/quant_avx512_body.h"

namespace redblue {
namespace avx512vnni {
KernelSet Kernels();
}
namespace avx512vbmi {
KernelSet Kernels();
}
namespace avx512rows8 {
void SetRows8Kernels(KernelSet& s);  // quant_avx512_rows8.cc
}
namespace avx512rows8vnni {
void SetRows8Kernels(KernelSet& s);  // quant_avx512_rows8_vnni.cc
}
namespace amx {
void SetRows8Kernels(KernelSet& s);  // quant_amx.cc
}
namespace amxemulated {
void SetRows8Kernels(KernelSet& s);  // quant_amx_emulated.cc
}
// The natural K-type, Q4_1 / Q5_0 / Q5_1 and IQ4 kernels have no AVX-512 forms: these paths run
// the AVX2 ones (every AVX-512 cpu has AVX2, FMA and F16C), so `auto` works and gives the same
// results everywhere. Every rows8 type takes 16 rows a zmm (quant_avx512_rows8_body.h, its
// batched tiles on vpdpbusd where the cpu has VNNI), with the AVX2 tiles' bits.
KernelSet Avx512Kernels(bool vnni, bool vbmi) {
  KernelSet s = vbmi ? avx512vbmi::Kernels() : vnni ? avx512vnni::Kernels() : avx512::Kernels();
  const KernelSet k = Avx2Kernels();
  s.q2k = k.q2k;
  s.q3k = k.q3k;
  s.q4k = k.q4k;
  s.q4kRows8 = k.q4kRows8;
  s.q5k = k.q5k;
  s.q5kRows8 = k.q5kRows8;
  s.q6k = k.q6k;
  s.q6kRows8 = k.q6kRows8;
  s.q3kRows8 = k.q3kRows8;
  s.q2kRows8 = k.q2kRows8;
  s.iq4nlRows8 = k.iq4nlRows8;
  s.iq4xsRows8 = k.iq4xsRows8;
  s.q41 = k.q41;
  s.q41Rows8 = k.q41Rows8;
  s.q50 = k.q50;
  s.q50Rows8 = k.q50Rows8;
  s.q51 = k.q51;
  s.q51Rows8 = k.q51Rows8;
  s.iq4nl = k.iq4nl;
  s.iq4xs = k.iq4xs;
  s.iq4xsLayout = k.iq4xsLayout;
  if (vnni)
    avx512rows8vnni::SetRows8Kernels(s);
  else
    avx512rows8::SetRows8Kernels(s);
  return s;
}
KernelSet AmxKernels(bool emulated) {
  KernelSet s = Avx512Kernels(true, false);
  if (emulated)
    amxemulated::SetRows8Kernels(s);
  else
    amx::SetRows8Kernels(s);
  s.q4NaturalCopy = true;  // a block of 16 rows of X: one A operand (quant_amx_body.h)
  return s;
}
}  // namespace redblue
