// AVX-512 (F/BW/VL) kernels without VNNI; see quant_avx512.inc.
#define KNS avx512
#define KTARGET "avx512f,avx512bw,avx512vl,f16c,fma"
#define KVNNI 0
#define KVBMI 0
#include "kernels/quant_avx512.inc"

namespace redblue {
namespace avx512vnni {
KernelSet Kernels();
}
KernelSet Avx512Kernels(bool vnni) { return vnni ? avx512vnni::Kernels() : avx512::Kernels(); }
}  // namespace redblue
