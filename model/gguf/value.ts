// GGUF metadata values with their on-disk types, shared by the reader and the writer. Types are
// explicit because llama.cpp checks them (general.alignment must be u32, token scores f32, ...):
// a number alone would not say which one to write.

/** GGUF value type ids (gguf.h `enum gguf_type`). */
export const VALUE_TYPE_IDS = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type ValueTypeName = keyof typeof VALUE_TYPE_IDS;
export type NumberTypeName = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type BigIntTypeName = 'u64' | 'i64';
export type ItemTypeName = Exclude<ValueTypeName, 'array'>;

export const VALUE_TYPE_BY_ID: ReadonlyMap<number, ValueTypeName> = new Map(
  Object.entries(VALUE_TYPE_IDS).map(([name, id]) => [id, name as ValueTypeName]),
);

/** Bytes of one fixed-size value; strings and arrays have none. */
export const FIXED_SIZE: Partial<Record<ValueTypeName, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

export type ScalarValue =
  | { type: NumberTypeName; value: number }
  | { type: BigIntTypeName; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

/** An array: a flat JS array for scalar items; for nested arrays, ArrayValue items. */
export type ArrayValue =
  | { type: 'array'; itemType: NumberTypeName; value: number[] }
  | { type: 'array'; itemType: BigIntTypeName; value: bigint[] }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: 'array'; value: ArrayValue[] };

export type GgufValue = ScalarValue | ArrayValue;

/** Constructors, so metadata reads `gv.u32(32)`, `gv.strings(tokens)`. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: bigint | number): GgufValue => ({ type: 'u64', value: BigInt(value) }),
  i64: (value: bigint | number): GgufValue => ({ type: 'i64', value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: string[]): ArrayValue => ({ type: 'array', itemType: 'string', value }),
  numbers: (itemType: NumberTypeName, value: number[]): ArrayValue => ({ type: 'array', itemType, value }),
  bigints: (itemType: BigIntTypeName, value: bigint[]): ArrayValue => ({ type: 'array', itemType, value }),
  bools: (value: boolean[]): ArrayValue => ({ type: 'array', itemType: 'bool', value }),
  arrays: (value: ArrayValue[]): ArrayValue => ({ type: 'array', itemType: 'array', value }),
};

/** "u32", "array of string", "array of array" for messages. */
export function describeValueType(v: GgufValue): string {
  return v.type === 'array' ? `array of ${v.itemType}` : v.type;
}
