// Tool calls read back from generated text (Hermes blocks, a whole-answer JSON object), the
// stream's hold-back of what may begin a call, and how a chat template sees tools and past calls.
import { describe, expect, it } from 'vitest';
import { ChatTemplate, type ChatMessage } from '../../model/chat.js';
import { gv } from '../../model/gguf/value.js';
import { createTokenizer } from '../../model/tokenizer/index.js';
import { loadVocab, vocabMetadata } from '../../model/vocab.js';
import {
  ForcedCallStream,
  parseToolCalls,
  ToolCallHoldback,
  toolsPrompt,
  type CallPiece,
  type ToolSpec,
} from '../../model/tool-calls.js';

const names = new Set(['get_weather', 'noop']);
const W = '{"name": "get_weather", "arguments": {"city": "Paris"}}';

describe('tool calls in generated text', () => {
  it('reads Hermes blocks and whole-answer objects; anything else is text', () => {
    expect(parseToolCalls(`<tool_call>\n${W}\n</tool_call>`, names)).toEqual({
      content: '',
      calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }],
    });
    // text around, two calls, the last block cut off at end-of-turn, "parameters" (Llama 3.1)
    expect(
      parseToolCalls(
        `Let me look.\n<tool_call>${W}</tool_call>\n<tool_call>{"name": "noop", "parameters": {}}`,
        names,
      ),
    ).toEqual({
      content: 'Let me look.\n\n',
      calls: [
        { name: 'get_weather', arguments: '{"city":"Paris"}' },
        { name: 'noop', arguments: '{}' },
      ],
    });
    // parallel_tool_calls: false keeps the first call; the others' blocks are not text either
    expect(
      parseToolCalls(`<tool_call>${W}</tool_call>\n<tool_call>{"name": "noop"}</tool_call>`, names, 1),
    ).toEqual({
      content: '\n',
      calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }],
    });
    expect(parseToolCalls(`  ${W} `, names)?.calls).toHaveLength(1);
    expect(parseToolCalls('{"name": "noop"}', names)?.calls).toEqual([{ name: 'noop', arguments: '{}' }]);
    for (const text of [
      'It is sunny.',
      '{"name": "rm_rf", "arguments": {}}', // not offered
      '<tool_call>{"name": "noop", "arguments": [1]}</tool_call>', // arguments not an object
      '<tool_call>{"name": "noop", "arguments": {</tool_call>', // not JSON
      '{"city": "Paris"}',
    ])
      expect(parseToolCalls(text, names), text).toBeUndefined();
  });

  it('streams text as it comes and holds back only what may begin a call', () => {
    const run = (pieces: string[]) => {
      const h = new ToolCallHoldback();
      const out = pieces.map((p) => h.push(p));
      return { out, end: h.end(names) };
    };
    // plain text: all out at once, except a tail that could start "<tool_call>"
    expect(run(['Hello', ' there <tool', '_x> ok'])).toEqual({
      out: ['Hello', ' there ', '<tool_x> ok'],
      end: { rest: '', calls: [] },
    });
    // a call after some text: the text goes out, the call comes at the end
    const mid = run(['Sure. ', '<tool_', 'call>', W, '</tool_call>', ' Done.']);
    expect(mid.out.join('')).toBe('Sure. ');
    expect(mid.end).toEqual({
      rest: ' Done.',
      calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }],
    });
    // an answer that opens with '{' (after blanks) is held whole; not a call: it all comes at the end
    expect(run(['\n ', '{"a"', ': 1}'])).toEqual({
      out: ['', '', ''],
      end: { rest: '\n {"a": 1}', calls: [] },
    });
    expect(run(['\n', W]).end.calls).toHaveLength(1);
  });
});

describe('a chat template and tools', () => {
  const tokenizer = createTokenizer(new Map(vocabMetadata(loadVocab('llama3'))));
  const meta = (template: string) =>
    new Map<string, unknown>([['tokenizer.chat_template', gv.string(template)]]);
  const tools: ToolSpec[] = [
    { name: 'get_weather', description: 'Weather now', parameters: { type: 'object' } },
  ];
  const history: ChatMessage[] = [
    { role: 'user', content: 'Weather?' },
    {
      role: 'assistant',
      content: '',
      toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }],
    },
    { role: 'tool', content: '21', toolCallId: 'c1' },
  ];

  it('a template that knows tools gets them, and past calls with their arguments as objects', () => {
    const t = ChatTemplate.fromMetadata(
      meta(
        '{% for t in tools %}<fn {{ t.function.name }}>{% endfor %}' +
          '{% for m in messages %}[{{ m.role }}]{{ m.content }}' +
          '{% if m.tool_calls %}{% for c in m.tool_calls %}<call {{ c.id }} {{ c.function.name }} {{ c.function.arguments.city }}>{% endfor %}{% endif %}' +
          '{% if m.tool_call_id %}<for {{ m.tool_call_id }}>{% endif %}{% endfor %}',
      ),
      tokenizer,
    );
    expect(t.render(history, tools)).toBe(
      '<fn get_weather>[user]Weather?[assistant]<call c1 get_weather Paris>[tool]21<for c1>',
    );
  });

  it('any other sees the tools in its system message, calls as Hermes blocks, answers as user turns', () => {
    const t = ChatTemplate.fromMetadata(
      meta('{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}'),
      tokenizer,
    );
    expect(t.render([{ role: 'system', content: 'Be brief.' }, ...history], tools)).toBe(
      `[system]Be brief.\n\n${toolsPrompt(tools)}\n` +
        '[user]Weather?\n' +
        '[assistant]<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n</tool_call>\n' +
        '[user]<tool_response>\n21\n</tool_response>\n',
    );
    // without tools: the history alone, no system message added
    expect(t.render(history)).not.toContain('# Tools');
  });
});

describe('a forced call streamed in pieces', () => {
  /** `text` fed in pieces of 1-4 characters (the cut points from `seed`); the pieces out. */
  const stream = (text: string, seed: number): CallPiece[] => {
    const f = new ForcedCallStream();
    const out: CallPiece[] = [];
    for (let i = 0, r = seed; i < text.length;) {
      r = (r * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + ((r >> 8) % 4);
      out.push(...f.push(text.slice(i, i + n)));
      i += n;
    }
    return out;
  };

  it('gives the name with the first piece, then the arguments as they come, whatever the key order', () => {
    const args = '{"city": "Paris, \\"FR\\" {x}", "days": [1, {"a": 2}], "unit": "c"}';
    for (const text of [
      `{"name": "get_weather", "arguments": ${args}}`,
      ` {\n  "arguments" : ${args} ,\n  "name":"get_weather"\n}`, // arguments first: held until the name
      `{"name":"get_\\u0077eather","parameters":${args}}`, // an escaped name, Llama's "parameters"
    ])
      for (const seed of [1, 2, 3, 4, 5]) {
        const pieces = stream(text, seed);
        expect(pieces[0]!.name, text).toBe('get_weather');
        expect(pieces.slice(1).every((p) => p.name === undefined)).toBe(true);
        expect(pieces.map((p) => p.arguments).join('')).toBe(args);
      }
    // Piece by piece: the arguments go out before the object closes.
    const f = new ForcedCallStream();
    expect(f.push('{"name": "f", "argu')).toEqual([]);
    expect(f.push('ments": {"a"')).toEqual([{ name: 'f', arguments: '{"a"' }]);
    expect(f.push(': 1}')).toEqual([{ arguments: ': 1}' }]);
    expect(f.push('}')).toEqual([]);
  });
});
