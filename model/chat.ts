// Chat prompts rendered from the model file's own template (`tokenizer.chat_template`, Jinja) with
// a maintained Jinja implementation (@huggingface/jinja), as llama.cpp's server does; ChatML when
// the file has none or its template does not parse (llama.cpp's fallback too).
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './tokenizer/index.js';

export interface ChatMessage {
  role: string;
  content: string;
}

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export class ChatTemplate {
  private readonly template: Template;
  private constructor(
    /** Where the template came from, and why when it is the fallback. */
    readonly source: { kind: 'file' } | { kind: 'chatml'; why: string },
    template: Template,
    private readonly tokenizer: Tokenizer,
    private readonly bos: string,
    private readonly eos: string,
  ) {
    this.template = template;
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
        return new ChatTemplate({ kind: 'file' }, new Template(given), tokenizer, bos, eos);
      } catch (e) {
        const why = `the file's chat template does not parse (${e instanceof Error ? e.message : String(e)})`;
        return new ChatTemplate({ kind: 'chatml', why }, new Template(CHATML), tokenizer, bos, eos);
      }
    }
    return new ChatTemplate(
      { kind: 'chatml', why: 'the file has no tokenizer.chat_template' },
      new Template(CHATML),
      tokenizer,
      bos,
      eos,
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
  tokens(messages: readonly ChatMessage[], addBos?: boolean): number[] {
    const text = this.render(messages);
    const bos = this.tokenizer.addBos && !(this.bos !== '' && text.startsWith(this.bos));
    return this.tokenizer.encode(text, { addBos: addBos ?? bos, parseSpecial: true });
  }

  /** The prompt text for `messages`, ending where the assistant's answer begins. */
  render(messages: readonly ChatMessage[]): string {
    return this.template.render({
      messages,
      add_generation_prompt: true,
      bos_token: this.bos,
      eos_token: this.eos,
    });
  }
}
