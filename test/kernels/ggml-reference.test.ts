// Every quantized weight type against ggml itself: the libggml-base.so that node-llama-cpp's
// binary package ships exports ggml's quantizers and dequantizers, and a small C helper
// (test/helpers/ggml-quantize.c, compiled here) calls them. redblue's quantizer must write ggml's
// bytes (what llama-quantize writes without an importance matrix) and its dequantizer give ggml's
// values, bit for bit, on rows with every kind of block: ordinary, heavy-tailed, all zero,
// all positive, tiny.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantize, quantize, WEIGHT_FORMATS, WEIGHT_TYPES, type WeightType } from '../../native/kernels.js';
import { random } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// The package's entry is dist/index.js; its binaries sit in bins/linux-x64 beside dist.
const libggml = join(
  dirname(require.resolve('@node-llama-cpp/linux-x64')),
  '..',
  'bins',
  'linux-x64',
  'libggml-base.so',
);

/** ggml's names for dequantize_row_<name>. */
const GGML_NAME: Partial<Record<WeightType, string>> = {
  q2_k: 'q2_K',
  q3_k: 'q3_K',
  q4_k: 'q4_K',
  q5_k: 'q5_K',
  q6_k: 'q6_K',
};
/** Every quantized type (the block types; f32 / f16 / bf16 are plain numbers). */
const TYPES = WEIGHT_TYPES.filter((t) => WEIGHT_FORMATS[t].blockElements > 1);

let dir = '';
let helper = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rb-ggml-'));
  helper = join(dir, 'ggml-quantize');
  execFileSync('cc', ['-O2', '-o', helper, join(here, '..', 'helpers', 'ggml-quantize.c'), '-ldl']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ggml(mode: 'q' | 'd', type: WeightType, rows: number, k: number, input: Uint8Array): Buffer {
  const id = mode === 'q' ? String(WEIGHT_FORMATS[type].ggmlType) : (GGML_NAME[type] ?? type);
  return execFileSync(helper, [libggml, mode, id, String(rows), String(k)], {
    input,
    maxBuffer: 64 << 20,
  });
}

/** Four rows of 1024: uniform, heavy-tailed, one with an all-zero and an all-positive super-block, tiny values. */
function rows(): Float32Array {
  const k = 1024;
  const x = random(4 * k, 31, 2);
  const u = random(k, 32);
  for (let i = 0; i < k; i++) x[k + i] = (x[k + i]! / 2) ** 3 * 4 + 0.05 * u[i]!;
  for (let i = 2 * k; i < 2 * k + 256; i++) x[i] = 0;
  for (let i = 2 * k + 256; i < 2 * k + 512; i++) x[i] = Math.abs(x[i]!) + 0.25;
  for (let i = 3 * k; i < 4 * k; i++) x[i] = x[i]! * 1e-6;
  return x;
}

describe('quantizers and dequantizers against ggml (libggml-base.so from node-llama-cpp)', () => {
  it('the library is there, and every quantized type is compared', () => {
    expect(existsSync(libggml)).toBe(true);
    expect(TYPES).toHaveLength(12);
  });
  const x = rows();
  for (const t of TYPES)
    it(`${t}: the same bytes, and the same values back`, () => {
      const ours = quantize(t, x, 4, 1024);
      const theirs = ggml('q', t, 4, 1024, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
      expect(theirs.length).toBe(ours.length);
      const bytesDiffer = ours.filter((b, i) => b !== theirs[i]).length;
      expect(bytesDiffer).toBe(0);
      const back = dequantize(t, ours, 4, 1024);
      const raw = ggml('d', t, 4, 1024, ours);
      const want = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      const valuesDiffer = back.filter((v, i) => !Object.is(v, want[i])).length;
      expect(valuesDiffer).toBe(0);
      // Not vacuous: the rows hold something other than zeros.
      expect(back.some((v) => v !== 0)).toBe(true);
    });
});
