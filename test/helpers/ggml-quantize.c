// ggml's own quantizers and dequantizers, for tests that hold redblue's to ggml's bytes and
// values: loads libggml-base.so (node-llama-cpp's binary package ships it) and runs
// ggml_quantize_chunk (no importance matrix, as llama-quantize without one) or
// dequantize_row_<type>.
// Usage: ggml-quantize LIB q TYPE_ID NROWS N_PER_ROW < rows.f32 > rows.quantized
//        ggml-quantize LIB d TYPE_NAME NROWS N_PER_ROW < rows.quantized > rows.f32
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef size_t (*quantize_chunk_fn)(int type, const float* src, void* dst, int64_t start, int64_t nrows,
                                    int64_t n_per_row, const float* imatrix);
typedef size_t (*row_size_fn)(int type, int64_t ne);
typedef void (*dequantize_row_fn)(const void* x, float* y, int64_t k);

static int readAll(void* p, size_t bytes) { return fread(p, 1, bytes, stdin) == bytes; }

int main(int argc, char** argv) {
  if (argc != 6 || (strcmp(argv[2], "q") != 0 && strcmp(argv[2], "d") != 0)) {
    fprintf(stderr, "usage: %s LIB q TYPE_ID NROWS N_PER_ROW | LIB d TYPE_NAME NROWS N_PER_ROW\n", argv[0]);
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  const int64_t nrows = atoll(argv[4]), n = atoll(argv[5]);
  if (nrows <= 0 || n <= 0 || nrows * n > (1 << 26)) {
    fprintf(stderr, "bad shape %lld x %lld\n", (long long)nrows, (long long)n);
    return 2;
  }
  const size_t elems = (size_t)(nrows * n);
  float* f = malloc(elems * sizeof(float));
  if (!f) return 1;
  if (argv[2][0] == 'q') {
    quantize_chunk_fn quantize = (quantize_chunk_fn)dlsym(lib, "ggml_quantize_chunk");
    row_size_fn rowSize = (row_size_fn)dlsym(lib, "ggml_row_size");
    if (!quantize || !rowSize) {
      fprintf(stderr, "%s lacks ggml_quantize_chunk or ggml_row_size\n", argv[1]);
      return 1;
    }
    const int type = atoi(argv[3]);
    const size_t bytes = rowSize(type, n) * (size_t)nrows;
    void* dst = malloc(bytes);
    if (!dst || !readAll(f, elems * sizeof(float))) {
      fprintf(stderr, "expected %zu floats on stdin\n", elems);
      return 1;
    }
    const size_t got = quantize(type, f, dst, 0, nrows, n, NULL);
    if (got != bytes) {
      fprintf(stderr, "ggml wrote %zu bytes, expected %zu\n", got, bytes);
      return 1;
    }
    fwrite(dst, 1, bytes, stdout);
    free(dst);
  } else {
    char name[64];
    snprintf(name, sizeof name, "dequantize_row_%s", argv[3]);
    dequantize_row_fn dequantize = (dequantize_row_fn)dlsym(lib, name);
    if (!dequantize) {
      fprintf(stderr, "%s lacks %s\n", argv[1], name);
      return 1;
    }
    // Every input byte: the caller gives exactly nrows rows.
    size_t cap = 1 << 20, len = 0, r;
    unsigned char* src = malloc(cap);
    while (src && (r = fread(src + len, 1, cap - len, stdin)) > 0)
      if ((len += r) == cap) src = realloc(src, cap *= 2);
    if (!src || len % (size_t)nrows != 0) {
      fprintf(stderr, "input of %zu bytes is not %lld equal rows\n", len, (long long)nrows);
      return 1;
    }
    for (int64_t i = 0; i < nrows; ++i) dequantize(src + (size_t)i * (len / (size_t)nrows), f + i * n, n);
    fwrite(f, sizeof(float), elems, stdout);
    free(src);
  }
  free(f);
  return 0;
}
