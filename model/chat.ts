// Chat prompts rendered from the model file's own template (`tokenizer.chat_template`, Jinja) with
// a maintained Jinja implementation (@huggingface/jinja), as llama.cpp's server does; ChatML when
// the file has none or its template does not parse (llama.cpp's fallback too).
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './tokenizer/index.js';
import { callText, toolsPrompt, type ToolCall, type ToolSpec } from './tool-calls.js';

export interface ChatMessage {
  role: string;
  content: string;
  /** An assistant's calls (arguments: the JSON text of the arguments object). */
  toolCalls?: ToolCall[];
  /** A tool's answer: the call it answers. */
  toolCallId?: string;
}

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export class ChatTemplate {
  private readonly template: Template;
  /** The template renders `tools` and tool calls itself (Qwen 2.5's, Llama 3.1's do). */
  private readonly knowsTools: boolean;
  private constructor(
    /** Where the template came from, and why when it is the fallback. */
    readonly source: { kind: 'file' } | { kind: 'chatml'; why: string },
    template: Template,
    private readonly tokenizer: Tokenizer,
    private readonly bos: string,
    private readonly eos: string,
    text: string,
  ) {
    this.template = template;
    this.knowsTools = /\btools\b/.test(text) && /\btool_calls\b/.test(text);
  }

  /** The file's template (`tokenizer.chat_template`), or ChatML saying why. */
  static fromMetadata(meta: ReadonlyMap<string, unknown>, tokenizer: Tokenizer): ChatTemplate {
    const text = (id: number | null) => (id === null ? '' : tokenizer.tokenText(id));
    const bos = text(tokenizer.bos);
    const eos = text(tokenizer.eos);
    const raw = meta.get('tokenizer.chat_template');
    const given = typeof raw === 'string' ? raw : (raw as { value?: unknown } | undefined)?.value;
    if (typeof given === 'string' && given.trim()) {
      try {
        return new ChatTemplate({ kind: 'file' }, new Template(given), tokenizer, bos, eos, given);
      } catch (e) {
        const why = `the file's chat template does not parse (${e instanceof Error ? e.message : String(e)})`;
        return new ChatTemplate({ kind: 'chatml', why }, new Template(CHATML), tokenizer, bos, eos, CHATML);
      }
    }
    return new ChatTemplate(
      { kind: 'chatml', why: 'the file has no tokenizer.chat_template' },
      new Template(CHATML),
      tokenizer,
      bos,
      eos,
      CHATML,
    );
  }

  /** "the file's", or "ChatML: " and why the file's could not be used. */
  get description(): string {
    return this.source.kind === 'file' ? "the file's" : `ChatML: ${this.source.why}`;
  }

  /**
   * The tokens of the rendered prompt. BOS, unless `addBos` says otherwise, where the file asks
   * for one and the template has not written it itself (Llama 3's starts with {{ bos_token }}).
   */
  tokens(messages: readonly ChatMessage[], addBos?: boolean, tools?: readonly ToolSpec[]): number[] {
    const text = this.render(messages, tools);
    const bos = this.tokenizer.addBos && !(this.bos !== '' && text.startsWith(this.bos));
    return this.tokenizer.encode(text, { addBos: addBos ?? bos, parseSpecial: true });
  }

  /**
   * The prompt text for `messages`, ending where the assistant's answer begins. `tools`: the
   * functions it may call. A template that knows tools gets them, and past calls, in Hugging
   * Face's form; any other sees them as text: the tools in the system message (toolsPrompt),
   * a call as its Hermes block, a tool's answer as a user turn in <tool_response> tags.
   */
  render(messages: readonly ChatMessage[], tools?: readonly ToolSpec[]): string {
    const hasTools = !!tools?.length;
    const ms = this.knowsTools
      ? messages.map(hfMessage)
      : asText(messages, hasTools ? toolsPrompt(tools) : '');
    return this.template.render({
      messages: ms,
      ...(this.knowsTools && hasTools
        ? { tools: tools.map((t) => ({ type: 'function', function: t })) }
        : {}),
      add_generation_prompt: true,
      bos_token: this.bos,
      eos_token: this.eos,
    });
  }
}

/** Hugging Face's message form: calls with their arguments as objects (templates write them with tojson). */
function hfMessage(m: ChatMessage): Record<string, unknown> {
  return {
    role: m.role,
    content: m.content,
    ...(m.toolCalls
      ? {
          tool_calls: m.toolCalls.map((c) => ({
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: parsedOr(c.arguments) },
          })),
        }
      : {}),
    ...(m.toolCallId !== undefined ? { tool_call_id: m.toolCallId } : {}),
  };
}

/** A call's arguments as an object where their text is JSON (OpenAI's clients send text). */
function parsedOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Tools, calls and tools' answers as plain system, assistant and user text. */
function asText(messages: readonly ChatMessage[], system: string): ChatMessage[] {
  const out = messages.map((m): ChatMessage => {
    if (m.role === 'tool')
      return { role: 'user', content: `<tool_response>\n${m.content}\n</tool_response>` };
    if (!m.toolCalls?.length) return { role: m.role, content: m.content };
    const calls = m.toolCalls.map(callText).join('\n');
    return { role: m.role, content: m.content ? `${m.content}\n${calls}` : calls };
  });
  if (!system) return out;
  if (out[0]?.role === 'system')
    return [{ role: 'system', content: `${out[0].content}\n\n${system}` }, ...out.slice(1)];
  return [{ role: 'system', content: system }, ...out];
}
