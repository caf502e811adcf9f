// AVX-512 VNNI kernels that also use VBMI's byte permute to gather a quad of Q4_0 blocks in one
// instruction (Ice Lake, Sapphire Rapids, Zen 4); see quant_avx512_body.h.
#define KNS avx512vbmi
#define KTARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c,fma"
#define KVNNI 1
#define KVBMI 1
#include "kernels/quant_avx512_body.h"
