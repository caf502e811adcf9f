#!/usr/bin/env node
// What a constrained draw's last resort costs: one pass of JsonObjectPrefix.allows over every
// token of the byte-level BPE vocabulary loadVocab('qwen2') gives (128,256), in a key, inside a string value (plain, with a
// pattern, with a format), and without a schema,
// best of 8. A draw whose first choices the automaton refuses pays it between two decode steps.
// Needs `npm run build:ts`.
import { performance } from 'node:perf_hooks';
import { TextEncoder } from 'node:util';
import { compileJsonSchema, JsonObjectPrefix } from '../dist/model/json-constraint.js';
import { createTokenizer } from '../dist/model/tokenizer/index.js';
import { loadVocab, vocabMetadata } from '../dist/model/vocab.js';

const tok = createTokenizer(new Map(vocabMetadata(loadVocab('qwen2'))));
const pieces = Array.from({ length: tok.vocabSize }, (_, t) => tok.pieceBytes(t));
const schema = compileJsonSchema({
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string' } },
    slug: { type: 'string', pattern: '^[a-z ]+$', maxLength: 40 },
    when: { type: 'string', format: 'date-time' },
  },
  required: ['name'],
  additionalProperties: false,
});
for (const [label, prefix, shape] of [
  ['in a key', '{"na', schema],
  ['in a string', '{"name": "Jo', schema],
  ['no schema, in a string', '{"a": [1, {"b": "x', undefined],
  ['in a pattern string', '{"slug": "ab', schema],
  ['in a date-time', '{"when": "2024-0', schema],
]) {
  const j = new JsonObjectPrefix(shape);
  j.take(new TextEncoder().encode(prefix));
  let best = Infinity;
  let allowed = 0;
  for (let r = 0; r < 8; r++) {
    const t0 = performance.now();
    allowed = 0;
    for (const p of pieces) if (j.allows(p)) allowed++;
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${label}: ${best.toFixed(2)} ms a pass, ${allowed} of ${pieces.length} tokens allowed`);
}
