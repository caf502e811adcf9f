// AVX-512 (F/BW/VL) rows8 tiles; see quant_avx512_rows8_body.h.
#define KNS avx512rows8
#define KTARGET "avx512f,avx512bw,avx512vl,avx2,f16c,fma"
#define KVNNI 0
#include "kernels/quant_avx512_rows8_body.h"
