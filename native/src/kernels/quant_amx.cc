// Q4_0 / Q8_0 batches on AMX-INT8 tiles; see quant_amx_body.h.
#define KNS amx
#define KTARGET "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma,amx-tile,amx-int8"
#define KAMX_EMULATE 0
#include "kernels/quant_amx_body.h"
