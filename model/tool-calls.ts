// Tool calls (OpenAI's `tools`): the functions a chat may call, how a prompt shows them to a
// model whose chat template does not, and the calls read back from the generated text. The
// format is Hermes' (`<tool_call>{"name": …, "arguments": {…}}</tool_call>`, what Qwen 2.5 and
// Qwen 3 are trained to write, and what their templates describe); a whole answer that is one
// such JSON object (Llama 3.1's way, and a forced call's output) is a call too.

/** A function the model may call (OpenAI's `tools[i].function`). */
export interface ToolSpec {
  name: string;
  description?: string;
  /** A JSON schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** A call as the text gave it: `arguments` is the arguments object's JSON text. */
export interface ParsedCall {
  name: string;
  arguments: string;
}

/** A call with its id (OpenAI's `tool_calls[i]`, in a reply or a past assistant message). */
export type ToolCall = ParsedCall & { id: string };

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

/**
 * The system prompt's part that tells a model about `tools` where its own template does not
 * (ChatML, Zephyr, …): the functions' signatures and the Hermes format to call them in.
 */
export function toolsPrompt(tools: readonly ToolSpec[]): string {
  const lines = tools.map((t) => JSON.stringify({ type: 'function', function: t }));
  return (
    `# Tools\n\nYou may call these functions:\n<tools>\n${lines.join('\n')}\n</tools>\n\n` +
    `To call one, write:\n${OPEN}\n{"name": <function-name>, "arguments": <args-json-object>}\n${CLOSE}`
  );
}

/** A call's text in Hermes' format (a template without tool calls sees past calls so). */
export function callText(c: ParsedCall): string {
  return `${OPEN}\n{"name": ${JSON.stringify(c.name)}, "arguments": ${c.arguments}}\n${CLOSE}`;
}

/** `{"name": known, "arguments" | "parameters": {…}}` as a call, or undefined. */
function asCall(json: string, names: ReadonlySet<string>): ParsedCall | undefined {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof o.name !== 'string' || !names.has(o.name)) return undefined;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
  return { name: o.name, arguments: JSON.stringify(args) };
}

/**
 * The calls in a generated answer, and the text around them (untrimmed): Hermes blocks anywhere (the last
 * may lack its `</tool_call>`, where generation ended at end-of-turn), or the whole answer one
 * JSON object. Undefined where the answer calls nothing (or a block does not parse, or names a
 * function not offered: then it is text, not a call). At most `max` calls; the blocks of the
 * others are left out of the text too.
 */
export function parseToolCalls(
  text: string,
  names: ReadonlySet<string>,
  max = Infinity,
): { content: string; calls: ParsedCall[] } | undefined {
  const whole = asCall(text.trim(), names);
  if (whole) return { content: '', calls: [whole] };
  const calls: ParsedCall[] = [];
  let content = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf(OPEN, at);
    if (open < 0) break;
    const close = text.indexOf(CLOSE, open + OPEN.length);
    const call = asCall(text.slice(open + OPEN.length, close < 0 ? undefined : close).trim(), names);
    if (!call) return undefined;
    if (calls.length < max) calls.push(call); // past max (parallel_tool_calls: false): dropped
    content += text.slice(at, open);
    at = close < 0 ? text.length : close + CLOSE.length;
  }
  if (calls.length === 0) return undefined;
  return { content: content + text.slice(at), calls };
}

/**
 * A streamed answer that may turn into calls: text goes out as it comes, except what could
 * begin a call (a `<tool_call>` or its start at the end, an answer that opens with '{'), which
 * is held until the answer ends and parseToolCalls says what it was.
 */
export class ToolCallHoldback {
  private text = '';
  /** Characters of the text sent so far (a prefix of the text before any call). */
  private sent = 0;
  private holding = false;

  /** The new text that can be sent now. */
  push(piece: string): string {
    this.text += piece;
    if (this.holding) return '';
    if (this.sent === 0) {
      // Leading blanks wait for what follows them: a '{' may open a whole-answer call.
      const t = this.text.trimStart();
      if (t === '') return '';
      if (t.startsWith('{')) {
        this.holding = true;
        return '';
      }
    }
    const open = this.text.indexOf(OPEN, this.sent);
    let until = this.text.length;
    if (open >= 0) [until, this.holding] = [open, true];
    else
      for (let k = Math.min(OPEN.length - 1, this.text.length - this.sent); k > 0; k--)
        if (this.text.endsWith(OPEN.slice(0, k))) {
          until = this.text.length - k;
          break;
        }
    const out = this.text.slice(this.sent, until);
    this.sent = until;
    return out;
  }

  /**
   * At the answer's end: the calls, and the content not sent yet (text after the calls, or all
   * that was held where there are none).
   */
  end(names: ReadonlySet<string>, max = Infinity): { rest: string; calls: ParsedCall[] } {
    const parsed = parseToolCalls(this.text, names, max);
    if (!parsed) return { rest: this.text.slice(this.sent), calls: [] };
    // The text sent lies before the first call, so it begins the content as it begins the text.
    return { rest: parsed.content.slice(this.sent), calls: parsed.calls };
  }
}

/**
 * The JSON schema a forced call's output keeps to (tool_choice "required" or naming a function):
 * `{"name": …, "arguments": {…}}`, the arguments the named function's parameters (with several
 * functions, one such object each, told apart by the name).
 */
export function forcedCallSchema(tools: readonly ToolSpec[]): Record<string, unknown> {
  const call = (t: ToolSpec) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters ?? { type: 'object' } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  });
  return { anyOf: tools.map(call) };
}

/** What a streamed call adds: its name once (the first piece), then more of its arguments' text. */
export interface CallPiece {
  name?: string;
  arguments: string;
}

/**
 * A forced call's answer (one `{"name": …, "arguments": {…}}` object, kept to forcedCallSchema,
 * so valid JSON naming an offered function) streamed as OpenAI streams calls: the name as soon as
 * it and the arguments have begun, then the arguments' text as it comes. A scan of the object's
 * top level: its keys, and where the name's and the arguments' values begin and end.
 */
export class ForcedCallStream {
  private text = '';
  private at = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Where the string being read began, at the top level (a key or the name's value). */
  private stringAt = -1;
  private key: string | undefined;
  private expectKey = true;
  private name: string | undefined;
  private argsAt = -1;
  private argsEnd = -1;
  private sent = -1;

  /** The pieces `text` adds to the call. */
  push(text: string): CallPiece[] {
    this.text += text;
    for (; this.at < this.text.length; this.at++) this.scan(this.text[this.at]!, this.at);
    return this.flush();
  }

  private scan(c: string, i: number): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === '\\') this.escaped = true;
      else if (c === '"') {
        this.inString = false;
        if (this.depth === 1 && this.stringAt >= 0) {
          const s = JSON.parse(this.text.slice(this.stringAt, i + 1)) as string;
          if (this.expectKey) this.key = s;
          else if (this.key === 'name') this.name = s;
          this.stringAt = -1;
        }
      }
      return;
    }
    if (c === '"') {
      this.inString = true;
      if (this.depth === 1) this.stringAt = i;
    } else if (c === '{' || c === '[') {
      if (this.depth === 1 && !this.expectKey && this.isArgs() && this.argsAt < 0) this.argsAt = i;
      this.depth++;
    } else if (c === '}' || c === ']') {
      this.depth--;
      if (this.depth === 1 && this.argsAt >= 0 && this.argsEnd < 0 && this.isArgs()) this.argsEnd = i + 1;
    } else if (this.depth === 1 && c === ':') this.expectKey = false;
    else if (this.depth === 1 && c === ',') this.expectKey = true;
  }

  private isArgs(): boolean {
    return this.key === 'arguments' || this.key === 'parameters';
  }

  private flush(): CallPiece[] {
    if (this.name === undefined || this.argsAt < 0) return [];
    const end = this.argsEnd >= 0 ? this.argsEnd : this.at;
    const first = this.sent < 0;
    const from = first ? this.argsAt : this.sent;
    if (!first && from >= end) return [];
    this.sent = end;
    const piece = { arguments: this.text.slice(from, end) };
    return [first ? { name: this.name, ...piece } : piece];
  }
}
