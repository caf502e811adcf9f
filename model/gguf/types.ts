// The ggml tensor types redblue reads, writes and computes: one table, used by the GGUF reader and
// writer, the model description and the split planner. Ids and block layouts are exactly ggml's
// (ggml.h `enum ggml_type`, ggml.c `type_traits`), because the ids are what GGUF files store.

export type GgmlTypeName =
  | 'f32'
  | 'f16'
  | 'bf16'
  | 'q8_0'
  | 'q4_0'
  | 'q4_1'
  | 'q5_0'
  | 'q5_1'
  | 'q2_k'
  | 'q3_k'
  | 'q4_k'
  | 'q5_k'
  | 'q6_k'
  | 'iq4_nl'
  | 'iq4_xs'
  | 'q8_k';

export interface GgmlType {
  /** The id a GGUF tensor info stores. */
  id: number;
  name: GgmlTypeName;
  /** Elements per block; a row length must be a multiple of it. */
  blockElements: number;
  blockBytes: number;
  /** False for Q8_K: ggml uses it only for quantized activations, never as a weight type. */
  weight: boolean;
}

export const GGML_TYPES: readonly GgmlType[] = [
  { id: 0, name: 'f32', blockElements: 1, blockBytes: 4, weight: true },
  { id: 1, name: 'f16', blockElements: 1, blockBytes: 2, weight: true },
  { id: 2, name: 'q4_0', blockElements: 32, blockBytes: 18, weight: true },
  { id: 3, name: 'q4_1', blockElements: 32, blockBytes: 20, weight: true },
  { id: 6, name: 'q5_0', blockElements: 32, blockBytes: 22, weight: true },
  { id: 7, name: 'q5_1', blockElements: 32, blockBytes: 24, weight: true },
  { id: 8, name: 'q8_0', blockElements: 32, blockBytes: 34, weight: true },
  { id: 10, name: 'q2_k', blockElements: 256, blockBytes: 84, weight: true },
  { id: 11, name: 'q3_k', blockElements: 256, blockBytes: 110, weight: true },
  { id: 12, name: 'q4_k', blockElements: 256, blockBytes: 144, weight: true },
  { id: 13, name: 'q5_k', blockElements: 256, blockBytes: 176, weight: true },
  { id: 14, name: 'q6_k', blockElements: 256, blockBytes: 210, weight: true },
  { id: 15, name: 'q8_k', blockElements: 256, blockBytes: 292, weight: false },
  { id: 20, name: 'iq4_nl', blockElements: 32, blockBytes: 18, weight: true },
  { id: 23, name: 'iq4_xs', blockElements: 256, blockBytes: 136, weight: true },
  { id: 30, name: 'bf16', blockElements: 1, blockBytes: 2, weight: true },
];

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(GGML_TYPES.map((t) => [t.name, t]));

/** Some ids of ggml types redblue does not handle, so that errors can say what the file holds. */
const OTHER_GGML_NAMES: Record<number, string> = {
  9: 'Q8_1',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  21: 'IQ3_S',
  22: 'IQ2_S',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

export function ggmlTypeById(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

export function isGgmlTypeName(name: string): name is GgmlTypeName {
  return BY_NAME.has(name as GgmlTypeName);
}

export function ggmlType(name: GgmlTypeName): GgmlType {
  const t = BY_NAME.get(name);
  if (t === undefined) {
    throw new RangeError(`unknown ggml type '${String(name)}'; known: ${supportedTypeNames()}`);
  }
  return t;
}

/** "id 6 (ggml Q5_0)" or "id 77 (not a ggml type)", for error messages. */
export function describeTypeId(id: number): string {
  const t = BY_ID.get(id);
  if (t !== undefined) return `id ${id} (${t.name})`;
  const other = OTHER_GGML_NAMES[id];
  return other !== undefined ? `id ${id} (ggml ${other})` : `id ${id} (not a ggml type)`;
}

export function supportedTypeNames(): string {
  return GGML_TYPES.map((t) => t.name).join(', ');
}

/** Bytes of one row of n elements; throws when n is not a whole number of blocks. */
export function rowBytes(type: GgmlTypeName | GgmlType, n: number): number {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  if (!Number.isSafeInteger(n) || n < 0 || n % t.blockElements !== 0) {
    throw new RangeError(
      `a ${t.name} row of ${n} elements is not a whole number of ${t.blockElements}-element blocks`,
    );
  }
  return (n / t.blockElements) * t.blockBytes;
}
