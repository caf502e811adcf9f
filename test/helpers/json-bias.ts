// JSON mode on the tests' random models: they would write anything, so the tests raise the
// structural tokens' logits and the answer closes an object within a few dozen tokens.
import type { Tokenizer } from '../../model/tokenizer/index.js';

/** [token id, +6] for the tokens whose text is `{`, `"`, `:`, `}` and `1`. */
export function jsonStructureBias(tokenizer: Tokenizer): [number, number][] {
  return ['{', '"', ':', '}', '1'].map((piece) => {
    for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.piece(id) === piece) return [id, 6];
    throw new Error(`no token ${piece} in the vocabulary`);
  });
}
