// AVX-512 VNNI kernels (vpdpbusd); see quant_avx512_body.h.
#define KNS avx512vnni
#define KTARGET "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"
#define KVNNI 1
#define KVBMI 0
#include "kernels/quant_avx512_body.h"
