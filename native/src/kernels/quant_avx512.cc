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
KernelSet Avx512Kernels(bool vnni, bool vbmi) {
  return vbmi ? avx512vbmi::Kernels() : vnni ? avx512vnni::Kernels() : avx512::Kernels();
}
}  // namespace redblue
