// Tokenizer metadata, as a GGUF file holds it, for two real vocabularies shipped in npm packages:
// Llama 2's SentencePiece vocabulary (llama-tokenizer-js) and Llama 3's byte-level BPE
// (llama3-tokenizer-js). Used by the tokenizer tests and to write vocab-only GGUF files that
// llama.cpp loads as the reference.
import llama2 from 'llama-tokenizer-js';
import llama3 from 'llama3-tokenizer-js';
import { TOKEN_TYPE } from '../../model/tokenizer/index.js';

/**
 * Llama 2: 32000 tokens; <unk> 0 (unknown), <s> 1 and </s> 2 (control), <0x00>..<0xFF> 3..258
 * (byte), the rest normal. The package keeps Hugging Face's merge list, not SentencePiece scores.
 * Llama 2's tokenizer.model scores its pieces in id order (later pieces lower), except the runs of
 * '▁' (259 '▁▁', 268 '▁▁▁▁', ...), scored -1e9, which is why they come last in that merge list;
 * so the score of piece i is -i, or -1e9 for a run of spaces (0 for the special and byte tokens,
 * as in the Llama 2 GGUF files).
 */
export function llama2Metadata(): Record<string, unknown> {
  const tokens = llama2.vocabById.slice();
  const n = tokens.length;
  const scores = new Array<number>(n);
  const types = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const isByte = /^<0x[0-9A-F]{2}>$/.test(tokens[i]!);
    types[i] =
      i === 0
        ? TOKEN_TYPE.unknown
        : i <= 2
          ? TOKEN_TYPE.control
          : isByte
            ? TOKEN_TYPE.byte
            : TOKEN_TYPE.normal;
    const spaces = /^\u2581{2,}$/.test(tokens[i]!);
    scores[i] = types[i] !== TOKEN_TYPE.normal ? 0 : spaces ? -1e9 : -i;
  }
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.scores': scores,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    'tokenizer.ggml.add_bos_token': true,
    'tokenizer.ggml.add_eos_token': false,
  };
}

/** Llama 3: 128000 BPE tokens and 256 control tokens from <|begin_of_text|> (128000) on. */
export function llama3Metadata(pre = 'llama-bpe'): Record<string, unknown> {
  const tokens = llama3.vocabById.slice();
  const types = tokens.map((_, i) => (i >= 128000 ? TOKEN_TYPE.control : TOKEN_TYPE.normal));
  const merges = [...llama3.merges.entries()].sort((a, b) => a[1] - b[1]).map(([m]) => m);
  return {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.bos_token_id': 128000,
    'tokenizer.ggml.eos_token_id': 128009,
    'tokenizer.ggml.add_bos_token': true,
  };
}
