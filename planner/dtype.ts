// Element sizes: A and B are stored in the problem's dtype, C is accumulated and reduced in f32.
import type { DType, DTypeInfo } from './types.js';

const DTYPES: Record<DType, DTypeInfo> = {
  f32: { bytesPerElement: 4, blockK: 1 },
  bf16: { bytesPerElement: 2, blockK: 1 },
  f16: { bytesPerElement: 2, blockK: 1 },
  // ggml block formats: 32 elements along k share one f16 scale.
  q8_0: { bytesPerElement: 34 / 32, blockK: 32 },
  q4_0: { bytesPerElement: 18 / 32, blockK: 32 },
};

export const C_BYTES = 4;

export function dtypeInfo(d: DType): DTypeInfo {
  const info = DTYPES[d];
  if (!info) throw new RangeError(`unknown dtype '${d}' (use one of ${Object.keys(DTYPES).join(', ')})`);
  return info;
}

export function isDType(d: string): d is DType {
  return Object.prototype.hasOwnProperty.call(DTYPES, d);
}
