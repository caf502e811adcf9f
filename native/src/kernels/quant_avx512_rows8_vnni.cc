// AVX-512 VNNI rows8 tiles (vpdpbusd); see quant_avx512_rows8_body.h.
#define KNS avx512rows8vnni
#define KTARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c,fma"
#define KVNNI 1
#include "kernels/quant_avx512_rows8_body.h"
