// `redblue synth`: writes a GGUF model with random weights and a real vocabulary, to try the
// engine (and llama.cpp) without downloading anything.
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  writeSyntheticModelAsync,
  IQ4_XS_MIX,
  Q2_K_MIX,
  Q3_K_M_MIX,
  Q4_K_M_MIX,
  type WeightTypes,
} from '../../model/synth.js';
import { MODEL_PRESETS } from '../../model/presets.js';
import { isGgmlTypeName } from '../../model/gguf/types.js';
import { UsageError } from '../../common/errors.js';
import { formatBytes } from '../format.js';
import { Progress } from '../progress.js';

function typesFor(t: string): WeightTypes {
  if (t === 'q4_k_m') return Q4_K_M_MIX;
  if (t === 'q3_k_m') return Q3_K_M_MIX;
  if (t === 'q2_k_mix') return Q2_K_MIX;
  if (t === 'iq4_xs_mix') return IQ4_XS_MIX;
  if (!isGgmlTypeName(t) || t === 'q8_k') {
    throw new UsageError(
      `--type '${t}' is not a weight type: use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs, or a mix: q2_k_mix, q3_k_m, q4_k_m, iq4_xs_mix`,
    );
  }
  return { default: t };
}

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('write a GGUF model with random weights and a real vocabulary (for trying and benchmarking)')
    .requiredOption('-o, --out <file>', 'where to write the .gguf file')
    .addOption(
      new Option('--arch <arch>', 'architecture').choices(['llama', 'qwen2', 'qwen3']).default('llama'),
    )
    .addOption(
      new Option(
        '--size <preset>',
        'shape: tiny (2 layers, 256 wide), demo (4 layers, 512 wide), tinyllama (1.1B: 22 layers, 2048 wide, GQA 32/4), qwen2.5-0.5b (24 layers, 896 wide, GQA 14/2, tied; with --arch qwen2)',
      )
        .choices(Object.keys(MODEL_PRESETS))
        .default('demo'),
    )
    .option(
      '--type <type>',
      "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q2_k q3_k q4_k q5_k q6_k iq4_xs, or a mix as llama.cpp's quantizer makes them: q2_k_mix (a Q2_K file), q3_k_m, q4_k_m, iq4_xs_mix (an IQ4_XS file); a 256-element type on rows that are not whole 256-blocks falls back as llama.cpp's quantizer does (q2_k, q3_k, iq4_xs → iq4_nl, q4_k → q5_0, q5_k → q5_1, q6_k → q8_0)",
      'q4_0',
    )
    .option('--seed <S>', 'seed of the random weights', (v) => Number(v), 1)
    .option(
      '--layers <N>',
      "only the preset's first N layers (each tensor's values follow from the seed and its name, so this is the full model's first N layers: a draft model for generate --draft)",
      (v) => Number(v),
    )
    .addHelpText(
      'after',
      `
The vocabulary is real (Llama 2's for llama, Llama 3's BPE with Qwen's pre-tokenizer for qwen2/qwen3),
so prompts tokenize as they would on a real model; the text generated is random.

Examples:
  redblue synth -o demo.gguf
  redblue synth -o tinyllama-q4_0.gguf --size tinyllama --type q4_0
  redblue synth -o tinyllama-q4_k_m.gguf --size tinyllama --type q4_k_m
  redblue synth -o qwen2.5-0.5b-q4_k_m.gguf --arch qwen2 --size qwen2.5-0.5b --type q4_k_m
  redblue synth -o tinyllama-draft.gguf --size tinyllama --type q4_0 --layers 2   # its first 2 layers`,
    )
    .action(
      async (o: {
        out: string;
        arch: 'llama' | 'qwen2' | 'qwen3';
        size: string;
        type: string;
        seed: number;
        layers?: number;
      }) => {
        if (!Number.isSafeInteger(o.seed) || o.seed < 0)
          throw new UsageError(`--seed must be a whole number, got ${o.seed}`);
        const preset = MODEL_PRESETS[o.size]!;
        if (
          o.layers !== undefined &&
          (!Number.isSafeInteger(o.layers) || o.layers < 1 || o.layers > preset.nLayer)
        )
          throw new UsageError(
            `--layers must be a whole number from 1 to ${preset.nLayer} (${o.size}'s layers), got ${o.layers}`,
          );
        const bar = new Progress('writing tensors');
        // Ctrl-C stops between tensors; the half-written file is removed, o.out left as it was.
        const stop = new AbortController();
        const onInterrupt = () => stop.abort();
        process.once('SIGINT', onInterrupt);
        try {
          const bytes = await writeSyntheticModelAsync(
            o.out,
            {
              ...preset,
              ...(o.layers !== undefined ? { nLayer: o.layers } : {}),
              arch: o.arch,
              types: typesFor(o.type),
              seed: o.seed,
              onProgress: (done, total) =>
                bar.update(Math.round(done / 2 ** 20), Math.round(total / 2 ** 20), 'MiB'),
            },
            stop.signal,
          );
          bar.done();
          const layers =
            o.layers !== undefined ? ` (its first ${o.layers} layer${o.layers === 1 ? '' : 's'})` : '';
          process.stdout.write(
            `wrote ${o.out}: ${o.arch} ${o.size}${layers}, ${o.type}, ${formatBytes(bytes)}\n`,
          );
        } catch (err) {
          bar.done();
          if (!stop.signal.aborted) throw err;
          process.stderr.write(`redblue: interrupted; ${o.out} was not written\n`);
          process.exitCode = 130;
        } finally {
          process.off('SIGINT', onInterrupt);
        }
      },
    );
}
