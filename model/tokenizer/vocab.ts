// The vocabulary as llama.cpp's llama_vocab::impl::load builds it from GGUF metadata: token texts,
// scores and attributes, the special ids with llama.cpp's defaults and auto-detection (EOT, EOM,
// FIM tokens by text), the end-of-generation set, the add_bos / add_eos / add_space_prefix flags
// and the special tokens that tokenizer_st_partition matches, longest first. Both tokenizers and
// the detokenizer read from this one object, so a flag means the same thing everywhere.
import { shown } from '../../common/format.js';

/** Bad tokenizer metadata or input: the message names the key or the value and what to do. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/**
 * The tokenizer keys of a GGUF file, as a Map or a plain object of key → value. Values may be
 * plain (string, number, bigint, boolean, arrays, typed arrays) or wrapped as the GGUF reader gives
 * them ({ type, value } / { type: 'array', itemType, value }); both are accepted so this module does
 * not depend on the reader.
 */
export type TokenizerMetadata = ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;

/** Token attributes (llama_token_attr), the bits llama.cpp tests when tokenizing and rendering. */
export const ATTR = {
  undefined: 0,
  unknown: 1 << 0,
  unused: 1 << 1,
  normal: 1 << 2,
  control: 1 << 3,
  userDefined: 1 << 4,
  byte: 1 << 5,
} as const;

export type TokenizerKind = 'spm' | 'bpe';

export interface Vocab {
  readonly kind: TokenizerKind;
  /** `tokenizer.ggml.pre` as written ('' when absent). */
  readonly pre: string;
  readonly texts: readonly string[];
  readonly scores: Float32Array;
  readonly attrs: Uint8Array;
  readonly textToId: ReadonlyMap<string, number>;
  /** BPE merges, "left right", in rank order (`tokenizer.ggml.merges`); empty for SentencePiece. */
  readonly merges: readonly string[];
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  readonly unk: number | null;
  readonly pad: number | null;
  readonly eogIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** llama.cpp's clean_spaces: the detokenizer removes " ?", " !", " 's" ... (llama3, gpt2). */
  readonly cleanSpaces: boolean;
  /** llama3's ignore_merges: a pre-token that is itself a token is taken whole. */
  readonly ignoreMerges: boolean;
  /** Control, user-defined and unknown tokens, longest text first (tokenizer_st_partition). */
  readonly specialTokens: readonly number[];
}

const PREFIX = 'tokenizer.ggml.';

function unwrap(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && 'value' in v) {
    return (v as { value: unknown }).value;
  }
  return v;
}

function lookup(meta: TokenizerMetadata, key: string): unknown {
  const raw = meta instanceof Map ? meta.get(key) : (meta as Record<string, unknown>)[key];
  return unwrap(raw);
}

function toNumber(key: string, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new TokenizerError(`${key} must be a number, got ${typeof v}; rewrite the GGUF with a numeric value`);
}

function optionalNumber(meta: TokenizerMetadata, key: string): number | undefined {
  const v = lookup(meta, key);
  return v === undefined ? undefined : toNumber(key, v);
}

function optionalBool(meta: TokenizerMetadata, key: string): boolean | undefined {
  const v = lookup(meta, key);
  if (v === undefined) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  throw new TokenizerError(`${key} must be a boolean, got ${typeof v}`);
}

function optionalArray(meta: TokenizerMetadata, key: string): ArrayLike<unknown> | undefined {
  const v = lookup(meta, key);
  if (v === undefined) return undefined;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return v as unknown as ArrayLike<unknown>;
  throw new TokenizerError(`${key} must be an array, got ${typeof v}`);
}

function stringArray(key: string, arr: ArrayLike<unknown>): string[] {
  const out = new Array<string>(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const s = unwrap(arr[i]);
    if (typeof s !== 'string') throw new TokenizerError(`${key}[${i}] must be a string, got ${typeof s}`);
    out[i] = s;
  }
  return out;
}

// `tokenizer.ggml.token_type` (llama_token_type: 0 undefined, 1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte) → attribute, as llama.cpp's load maps them.
const ATTR_OF_TYPE: readonly number[] = [
  ATTR.undefined,
  ATTR.normal,
  ATTR.unknown,
  ATTR.control,
  ATTR.userDefined,
  ATTR.unused,
  ATTR.byte,
];

function attrOfType(type: number): number {
  return ATTR_OF_TYPE[type] ?? ATTR.undefined;
}

/** Pre-tokenizer names llama.cpp maps to the llama3 regex (and add_bos, ignore_merges). */
export const LLAMA3_PRE = [
  'llama3',
  'llama-v3',
  'llama-bpe',
  'falcon3',
  'falcon-h1',
  'pixtral',
  'midm-2.0',
  'lfm2',
];
/** ... to the qwen2 regex (digits one by one), clean_spaces off. */
export const QWEN2_PRE = ['qwen2', 'deepseek-r1-qwen', 'kormo'];
/** ... to Mistral's tekken regex (Mistral Nemo, Mistral Small 3, Ministral): add_bos, ignore_merges, clean_spaces off. */
export const TEKKEN_PRE = ['tekken'];
/** ... to a digit pass, then the GPT-2 regex (SmolLM, SmolLM2); clean_spaces off. */
export const SMOLLM_PRE = ['smollm'];
/** ... to llama.cpp's default passes ('' = no tokenizer.ggml.pre, as older BPE conversions). */
export const DEFAULT_PRE = ['default', ''];
/** ... to the GPT-2 regex. */
export const GPT2_PRE = [
  'gpt-2',
  'phi-2',
  'jina-es',
  'jina-de',
  'gigachat',
  'jina-v2-es',
  'jina-v2-de',
  'mellum',
];

// Texts llama.cpp treats as end of generation whatever their ids (llama-vocab.cpp, special_eog_ids).
const EOG_TEXTS = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '<|end_of_text|>',
  '<end_of_utterance>',
]);
// Auto-detected when no id is in the metadata; these are end-of-generation too (Qwen's FIM tokens).
const EOT_TEXTS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '<EOT>',
  '_<EOT>',
  '<end_of_utterance>',
];
const FIM_PAD_TEXTS = ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>'];
const FIM_REP_TEXTS = ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'];
const FIM_SEP_TEXTS = ['<|file_sep|>'];

export function buildVocab(meta: TokenizerMetadata): Vocab {
  const model = lookup(meta, PREFIX + 'model');
  if (typeof model !== 'string') {
    throw new TokenizerError(
      `tokenizer.ggml.model is missing; this file has no vocabulary (supported models: 'llama' (SentencePiece), 'gpt2' (byte-level BPE))`,
    );
  }
  let kind: TokenizerKind;
  if (model === 'llama') kind = 'spm';
  else if (model === 'gpt2') kind = 'bpe';
  else {
    throw new TokenizerError(
      `tokenizer.ggml.model '${shown(model)}' is not supported; supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE)`,
    );
  }
  const preRaw = lookup(meta, PREFIX + 'pre');
  const pre = typeof preRaw === 'string' ? preRaw : '';
  const known = [...LLAMA3_PRE, ...QWEN2_PRE, ...GPT2_PRE, ...TEKKEN_PRE, ...SMOLLM_PRE, ...DEFAULT_PRE];
  if (kind === 'bpe' && !known.includes(pre)) {
    throw new TokenizerError(
      `tokenizer.ggml.pre '${shown(pre)}' is not supported; supported pre-tokenizers: ` +
        known
          .filter((p) => p !== '')
          .map((p) => `'${p}'`)
          .join(', '),
    );
  }

  const tokenList = optionalArray(meta, PREFIX + 'tokens');
  if (!tokenList) throw new TokenizerError('tokenizer.ggml.tokens is missing: the file has no vocabulary');
  const texts = stringArray(PREFIX + 'tokens', tokenList);
  const n = texts.length;
  for (let i = 0; i < n; i++) if (texts[i] === '') texts[i] = `[EMPTY_${i}]`; // as llama.cpp

  const scores = new Float32Array(n);
  const scoreList = optionalArray(meta, PREFIX + 'scores');
  if (scoreList) {
    if (scoreList.length < n) {
      throw new TokenizerError(`tokenizer.ggml.scores has ${scoreList.length} entries for ${n} tokens`);
    }
    for (let i = 0; i < n; i++) scores[i] = toNumber(PREFIX + 'scores', unwrap(scoreList[i]));
  }
  const attrs = new Uint8Array(n).fill(ATTR.normal);
  const typeList = optionalArray(meta, PREFIX + 'token_type');
  if (typeList) {
    if (typeList.length < n) {
      throw new TokenizerError(`tokenizer.ggml.token_type has ${typeList.length} entries for ${n} tokens`);
    }
    for (let i = 0; i < n; i++) attrs[i] = attrOfType(toNumber(PREFIX + 'token_type', unwrap(typeList[i])));
  }
  const textToId = new Map<string, number>();
  for (let i = 0; i < n; i++) textToId.set(texts[i]!, i); // a later duplicate wins, as token_to_id[word] = i

  let merges: string[] = [];
  let addBos: boolean;
  let addSpacePrefix: boolean;
  let cleanSpaces = false;
  let ignoreMerges = false;
  let bos: number | null;
  let eos: number | null;
  let unk: number | null;
  if (kind === 'spm') {
    bos = 1;
    eos = 2;
    unk = 0;
    addBos = true;
    addSpacePrefix = true;
  } else {
    const mergeList = optionalArray(meta, PREFIX + 'merges');
    if (!mergeList) {
      throw new TokenizerError('tokenizer.ggml.merges is missing: a gpt2 (BPE) vocabulary needs its merges');
    }
    merges = stringArray(PREFIX + 'merges', mergeList);
    bos = 11;
    eos = 11;
    unk = null;
    addBos = false;
    addSpacePrefix = false;
    cleanSpaces = true;
    if (LLAMA3_PRE.includes(pre)) {
      addBos = true;
      ignoreMerges = true;
    } else if (TEKKEN_PRE.includes(pre)) {
      addBos = true;
      ignoreMerges = true;
      cleanSpaces = false;
    } else if (QWEN2_PRE.includes(pre) || SMOLLM_PRE.includes(pre)) {
      cleanSpaces = false;
    }
  }
  let addEos = false;
  addSpacePrefix = optionalBool(meta, PREFIX + 'add_space_prefix') ?? addSpacePrefix;

  const special = (key: string, def: number | null): number | null => {
    let id = def !== null && def >= n ? null : def;
    const v = optionalNumber(meta, PREFIX + key);
    // An id is a u32 in llama.cpp; one out of range is ignored there (a warning), as here.
    if (v !== undefined && !Number.isInteger(v)) {
      throw new TokenizerError(`${PREFIX + key} must be a whole number (a token id), got ${v}`);
    }
    if (v !== undefined && v >= 0 && v < n) id = v;
    return id;
  };
  bos = special('bos_token_id', bos);
  eos = special('eos_token_id', eos);
  unk = special('unknown_token_id', unk);
  let eot = special('eot_token_id', null);
  let eom = special('eom_token_id', null);
  const pad = special('padding_token_id', null);
  let fimPad = special('fim_pad_token_id', null);
  let fimRep = special('fim_rep_token_id', null);
  let fimSep = special('fim_sep_token_id', null);
  addBos = optionalBool(meta, PREFIX + 'add_bos_token') ?? addBos;
  addEos = optionalBool(meta, PREFIX + 'add_eos_token') ?? addEos;

  // Auto-detection by text (llama.cpp: "convert scripts should provide these"); a detected token
  // becomes a control token if it was not one.
  const detect = (current: number | null, candidates: readonly string[]): number | null => {
    if (current !== null) return current;
    for (const t of candidates) {
      const id = textToId.get(t);
      if (id !== undefined) {
        attrs[id]! |= ATTR.control;
        return id;
      }
    }
    return null;
  };
  eot = detect(eot, EOT_TEXTS);
  eom = detect(eom, ['<|eom_id|>']);
  fimPad = detect(fimPad, FIM_PAD_TEXTS);
  fimRep = detect(fimRep, FIM_REP_TEXTS);
  fimSep = detect(fimSep, FIM_SEP_TEXTS);

  const eogIds = new Set<number>();
  for (const id of [fimPad, fimRep, fimSep]) if (id !== null) eogIds.add(id);
  for (const t of EOG_TEXTS) {
    const id = textToId.get(t);
    if (id !== undefined) {
      eogIds.add(id);
      attrs[id]! |= ATTR.control;
    }
  }
  for (const id of [eos, eot, eom]) if (id !== null) eogIds.add(id);

  const specialTokens: number[] = [];
  for (let i = 0; i < n; i++) {
    if (attrs[i]! & (ATTR.control | ATTR.userDefined | ATTR.unknown)) specialTokens.push(i);
  }
  // Longest UTF-8 text first, as llama.cpp sorts them (its sort is not stable; ties here by id).
  const bytes = (id: number) => Buffer.byteLength(texts[id]!, 'utf8');
  specialTokens.sort((a, b) => bytes(b) - bytes(a) || a - b);

  return {
    kind,
    pre,
    texts,
    scores,
    attrs,
    textToId,
    merges,
    bos,
    eos,
    eot,
    unk,
    pad,
    eogIds,
    addBos,
    addEos,
    addSpacePrefix,
    cleanSpaces,
    ignoreMerges,
    specialTokens,
  };
}
