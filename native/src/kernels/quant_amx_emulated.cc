// quant_amx_body.h's tiles with the AMX instructions modelled in C++, so that any AVX-512 VNNI
// cpu tests their logic (kernel path "amx-emulated", for tests only: thousands of times slower).
#define KNS amxemulated
#define KTARGET "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"
#define KAMX_EMULATE 1
#include "kernels/quant_amx_body.h"
