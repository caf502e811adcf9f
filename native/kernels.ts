// Typed access to the native compute kernels (native/src/kernels, bindings/kernel_bindings.cc):
// f32 GEMM on strided sub-blocks, ggml-layout quantized weights and Y = X·Wᵀ on them. Every
// size, offset and buffer bound is checked natively too; this layer checks the enumerations
// and gives the calls types.
import { loadAddon, type NativeThreadPool } from './addon.js';

export type WeightType =
  | 'q4_0'
  | 'q8_0'
  | 'f16'
  | 'bf16'
  | 'f32'
  | 'q4_k'
  | 'q5_k'
  | 'q6_k'
  | 'q4_1'
  | 'q5_0'
  | 'q5_1'
  | 'q3_k'
  | 'iq4_nl'
  | 'iq4_xs'
  | 'q2_k';

/**
 * Every weight type's block in ggml's layout: elements per block (a row length must be a
 * multiple), bytes per block, and ggml's type id (the GGUF tensor `type` field). The native
 * table (quant_formats.cc) holds the same numbers; tests compare the two.
 */
export const WEIGHT_FORMATS: Readonly<
  Record<WeightType, { blockElements: number; blockBytes: number; ggmlType: number }>
> = {
  q4_0: { blockElements: 32, blockBytes: 18, ggmlType: 2 },
  q8_0: { blockElements: 32, blockBytes: 34, ggmlType: 8 },
  f16: { blockElements: 1, blockBytes: 2, ggmlType: 1 },
  bf16: { blockElements: 1, blockBytes: 2, ggmlType: 30 },
  f32: { blockElements: 1, blockBytes: 4, ggmlType: 0 },
  q4_k: { blockElements: 256, blockBytes: 144, ggmlType: 12 },
  q5_k: { blockElements: 256, blockBytes: 176, ggmlType: 13 },
  q6_k: { blockElements: 256, blockBytes: 210, ggmlType: 14 },
  q4_1: { blockElements: 32, blockBytes: 20, ggmlType: 3 },
  q5_0: { blockElements: 32, blockBytes: 22, ggmlType: 6 },
  q5_1: { blockElements: 32, blockBytes: 24, ggmlType: 7 },
  q3_k: { blockElements: 256, blockBytes: 110, ggmlType: 11 },
  iq4_nl: { blockElements: 32, blockBytes: 18, ggmlType: 20 },
  iq4_xs: { blockElements: 256, blockBytes: 136, ggmlType: 23 },
  q2_k: { blockElements: 256, blockBytes: 84, ggmlType: 10 },
};
export const WEIGHT_TYPES = Object.keys(WEIGHT_FORMATS) as readonly WeightType[];
const pick = (f: 'blockElements' | 'blockBytes') =>
  Object.fromEntries(WEIGHT_TYPES.map((t) => [t, WEIGHT_FORMATS[t][f]])) as Readonly<
    Record<WeightType, number>
  >;
/** Elements per block of each type (32 for _0 types and IQ4_NL, 256 for K types and IQ4_XS, 1 otherwise). */
export const BLOCK_ELEMENTS = pick('blockElements');
/** Bytes per block of each type. */
export const BLOCK_BYTES = pick('blockBytes');
/** Bytes of one Q8_K activation block (f32 d, 256 × int8, 16 × int16 bsums); see quantizeQ8K. */
export const Q8K_BLOCK_BYTES = 292;
/**
 * Instruction-set path of the quantized kernels; 'auto' takes the best the cpu has. avx512 =
 * F/BW/VL; avx512vnni adds vpdpbusd; avx512vbmi adds VBMI's byte permute for Q4_0; amx is
 * avx512vnni with Q4_0, Q8_0 and Q4_K batches (rows8 weights; Q8_0 and Q4_K from 16 rows of X,
 * Q4_0 from 48) on AMX-INT8 tiles; 'auto' picks it where Linux grants the process the tile state.
 * The environment variable REDBLUE_KERNEL_PATH pins what 'auto' means for the whole process.
 * 'amx-emulated' runs amx's tiles on a C++ model of the AMX instructions, on any avx512vnni cpu:
 * for tests only (slow), never listed in kernelPaths().supported.
 */
export type KernelPath =
  'auto' | 'scalar' | 'avx2' | 'avx512' | 'avx512vnni' | 'avx512vbmi' | 'amx' | 'amx-emulated';
export const KERNEL_PATHS: readonly KernelPath[] = [
  'auto',
  'scalar',
  'avx2',
  'avx512',
  'avx512vnni',
  'avx512vbmi',
  'amx',
  'amx-emulated',
];

/** Elements per Q8_0 / Q4_0 block (ggml QK8_0 = QK4_0 = 32); BLOCK_ELEMENTS has every type. */
export const QBLOCK = 32;

/**
 * What a row length must be for `type` when `k` is not a whole number of its blocks ("a
 * multiple of 32 for q4_0 (its block size)"), or undefined when it is.
 */
export function rowLengthProblem(type: WeightType, k: number): string | undefined {
  const b = BLOCK_ELEMENTS[type];
  return k % b === 0 ? undefined : `a multiple of ${b} for ${type} (its block size)`;
}

export type F32Buffer = Float32Array | ArrayBuffer;
export type ByteBuffer = ArrayBufferView | ArrayBuffer;

/**
 * C = alpha·op(A)·op(B) + beta·C, row-major. op(A) is m×k (A is k×m when transA), op(B) is
 * k×n (B is n×k when transB). Offsets and leading dimensions are in f32 elements of the given
 * buffers; defaults: offsets 0, lda = transA ? m : k, ldb = transB ? k : n, ldc = n, alpha 1,
 * beta 0. C must not overlap A or B.
 */
export interface GemmOptions {
  m: number;
  n: number;
  k: number;
  a: F32Buffer;
  b: F32Buffer;
  c: F32Buffer;
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/**
 * Y[m×n] = X[m×k]·Wᵀ (Y overwritten). W: n rows of k elements of `type`, wStride bytes apart
 * (default rowBytes(type, k)), starting wOffset bytes into `w`. X, Y: f32 with element offsets
 * and row strides (ldx ≥ k, ldy ≥ n). Q8_0/Q4_0 quantize each row of X to Q8_0 on the fly, the
 * K types to Q8_K (as llama.cpp does); f32/f16/bf16 keep X in f32.
 */
export interface MatmulQOptions {
  type: WeightType;
  w: ByteBuffer;
  n: number;
  k: number;
  x: F32Buffer;
  m: number;
  y: F32Buffer;
  wOffset?: number;
  wStride?: number;
  xOffset?: number;
  ldx?: number;
  yOffset?: number;
  ldy?: number;
  isa?: KernelPath;
  /** Each row of y bit-identical whatever m (a batching server's guarantee); default false. */
  rowInvariant?: boolean;
  /**
   * w is in the rows8 layout (interleaveRows8): rows in groups of 8 share vector ops, the rows
   * after the last whole group stay natural. Only where rows8Runs(type, isa); wStride must be
   * the row size.
   */
  rows8?: boolean;
}

export interface KernelPaths {
  /** Paths this cpu runs, scalar first. */
  supported: Exclude<KernelPath, 'auto'>[];
  /** What 'auto' resolves to. */
  auto: Exclude<KernelPath, 'auto'>;
}

interface KernelAddon {
  gemmF32(pool: NativeThreadPool, o: GemmOptions): void;
  gemmF32Async(pool: NativeThreadPool, o: GemmOptions): Promise<void>;
  openblasGemm(o: GemmOptions, threads: number): void;
  matmulQ(pool: NativeThreadPool, o: MatmulQOptions): void;
  matmulQAsync(pool: NativeThreadPool, o: MatmulQOptions): Promise<void>;
  matmulQShared(pool: NativeThreadPool, parts: MatmulQOptions[]): void;
  timeMatmulQ(pool: NativeThreadPool, o: MatmulQOptions, calls: number): number;
  quantize(type: WeightType, x: F32Buffer, rows: number, k: number, path?: KernelPath): Uint8Array;
  dequantize(type: WeightType, w: ByteBuffer, rows: number, k: number): Float32Array;
  quantizeQ8K(x: F32Buffer, rows: number, k: number, path?: KernelPath): Uint8Array;
  interleaveRows8(type: WeightType, w: ByteBuffer, rows: number, k: number): Uint8Array;
  rows8Runs(type: WeightType, path?: KernelPath): boolean;
  ggmlTypeId(type: WeightType): number;
  weightTypeFromGgml(id: number): WeightType;
  rowBytes(type: WeightType, k: number): number;
  kernelPaths(): KernelPaths;
  readBytes(pool: NativeThreadPool, buffer: ByteBuffer, offset?: number, length?: number): number;
  argmaxF32(x: Float32Array, scalar?: boolean): number;
  gaussianFillF32(x: Float32Array, mean: number, std: number, state: Float64Array): void;
  topKF32(x: Float32Array, k: number, ids: Int32Array, scalar?: boolean): number;
}

const native = (): KernelAddon => loadAddon<KernelAddon>();

function checkType(type: unknown): asserts type is WeightType {
  if (!WEIGHT_TYPES.includes(type as WeightType))
    throw new TypeError(`unknown weight type ${JSON.stringify(type)}: use one of ${WEIGHT_TYPES.join(', ')}`);
}

function checkMatmul(o: MatmulQOptions): void {
  checkType(o.type);
  if (o.isa !== undefined && !KERNEL_PATHS.includes(o.isa))
    throw new TypeError(
      `unknown kernel path ${JSON.stringify(o.isa)}: use one of ${KERNEL_PATHS.join(', ')}`,
    );
}

/** f32 GEMM on the pool's pinned workers (OpenBLAS single-threaded per block). */
export function gemmF32(pool: NativeThreadPool, o: GemmOptions): void {
  native().gemmF32(pool, o);
}

/** gemmF32 off the event loop; keep the buffers untouched until the promise settles. */
export function gemmF32Async(pool: NativeThreadPool, o: GemmOptions): Promise<void> {
  return native().gemmF32Async(pool, o);
}

/** OpenBLAS sgemm called directly with its own unpinned threads (benchmark reference). */
export function openblasGemm(o: GemmOptions, threads: number): void {
  native().openblasGemm(o, threads);
}

export function matmulQ(pool: NativeThreadPool, o: MatmulQOptions): void {
  checkMatmul(o);
  native().matmulQ(pool, o);
}

export function matmulQAsync(pool: NativeThreadPool, o: MatmulQOptions): Promise<void> {
  checkMatmul(o);
  return native().matmulQAsync(pool, o);
}

/**
 * Several matmulQ calls on one X (the same x, m, k, ldx, isa and rowInvariant; each its own w, n
 * and y), X quantized once for the parts whose kernels read it alike: a layer's q, k and v.
 */
export function matmulQShared(pool: NativeThreadPool, parts: MatmulQOptions[]): void {
  for (const o of parts) checkMatmul(o);
  native().matmulQShared(pool, parts);
}

/**
 * Seconds per call of `calls` back-to-back matmulQ calls, run and timed by the pool's worker 0:
 * a kernel's own speed on matrices small enough that a call from JS (~10 µs) would hide it.
 */
export function timeMatmulQ(pool: NativeThreadPool, o: MatmulQOptions, calls: number): number {
  checkMatmul(o);
  return native().timeMatmulQ(pool, o, calls);
}

/**
 * rows×k f32 values → rows×rowBytes(type, k) bytes in the ggml layout (bit-exact with ggml's
 * reference quantizers; K types follow quantize_row_q*_K_ref without an importance matrix).
 * path 'scalar' forces the scalar Q8_0 quantizer; the SIMD one used otherwise gives the same bytes.
 */
export function quantize(
  type: WeightType,
  x: F32Buffer,
  rows: number,
  k: number,
  path: KernelPath = 'auto',
): Uint8Array {
  checkType(type);
  return native().quantize(type, x, rows, k, path);
}

export function dequantize(type: WeightType, w: ByteBuffer, rows: number, k: number): Float32Array {
  checkType(type);
  return native().dequantize(type, w, rows, k);
}

/**
 * rows×k f32 activations → Q8_K blocks (Q8K_BLOCK_BYTES each, k a multiple of 256), exactly as
 * ggml's quantize_row_q8_K_ref: what the K-type matmuls run their dot products on. path 'scalar'
 * forces the scalar quantizer; the SIMD one used otherwise gives the same bytes.
 */
export function quantizeQ8K(x: F32Buffer, rows: number, k: number, path: KernelPath = 'auto'): Uint8Array {
  return native().quantizeQ8K(x, rows, k, path);
}

/**
 * rows natural rows of `type` → the same rows in the rows8 layout (a new buffer of the same
 * size): each whole group of 8 interleaved so that one vector op serves 8 rows, the rest copied.
 * Throws for a type without the layout (see rows8Runs).
 */
export function interleaveRows8(type: WeightType, w: ByteBuffer, rows: number, k: number): Uint8Array {
  checkType(type);
  return native().interleaveRows8(type, w, rows, k);
}

/** Whether the kernels of `path` (auto: this cpu's best) run `type` in the rows8 layout. */
export function rows8Runs(type: WeightType, path: KernelPath = 'auto'): boolean {
  checkType(type);
  return native().rows8Runs(type, path);
}

/** ggml's type id of a weight type (the GGUF tensor `type` field), from the native table. */
export function ggmlTypeId(type: WeightType): number {
  checkType(type);
  return native().ggmlTypeId(type);
}

/** The weight type of a GGUF tensor `type` id; throws naming the id when it is not supported. */
export function weightTypeFromGgml(id: number): WeightType {
  return native().weightTypeFromGgml(id);
}

/** Bytes of one row of k elements; throws when k is not a multiple of the block size. */
export function rowBytes(type: WeightType, k: number): number {
  checkType(type);
  return native().rowBytes(type, k);
}

export function kernelPaths(): KernelPaths {
  return native().kernelPaths();
}

/** Reads every byte of the range on the pool (STREAM-like read); returns a checksum. */
export function readBytes(
  pool: NativeThreadPool,
  buffer: ByteBuffer,
  offset?: number,
  length?: number,
): number {
  return native().readBytes(pool, buffer, offset, length);
}

/**
 * The index of the largest of x (the lowest among equals), or -1 - i where x[i] is the first NaN
 * or +Infinity: the sampler's argmax, one vector pass (select.cc). `scalar`: the reference path.
 */
export function argmaxF32(x: Float32Array, scalar = false): number {
  return native().argmaxF32(x, scalar);
}

/**
 * x[i] = mean + std · N(0, 1), xorshift32 and Box-Muller (gaussian.cc), continuing the sequence in
 * `state` ([xorshift state, 1 when a spare value waits, the spare]), which it updates.
 */
export function gaussianFillF32(x: Float32Array, mean: number, std: number, state: Float64Array): void {
  native().gaussianFillF32(x, mean, std, state);
}

/**
 * The k largest of x (a larger value first, the lower index among equals) into ids[0, k),
 * ascending: -1, or i where x[i] is the first NaN or +Infinity (ids then unset).
 */
export function topKF32(x: Float32Array, k: number, ids: Int32Array, scalar = false): number {
  return native().topKF32(x, k, ids, scalar);
}
