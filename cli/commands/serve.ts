// `redblue serve`: an OpenAI-compatible server for a GGUF model, every layer split across one
// executor per (virtual) NUMA node.
import type { Command } from 'commander';
import { basename } from 'node:path';
import { readTopology } from '../../native/topology.js';
import { parsePositiveInt, UsageError } from '../../common/errors.js';
import { serve } from '../../server/serve.js';
import { MAX_SEQUENCES } from '../../native/model.js';
import { DEFAULT_PORT } from '../../executor/launch/hostfile.js';
import { authFromOptions, type SecurityOpts } from '../../executor/host/options.js';
import { addSecurityOptions } from './executor.js';
import { addDraftFlags, draftOf, lookupTokens } from './generate.js';
import { Progress } from '../progress.js';
import { wrapText } from '../format.js';
import { SUPPORTED } from '../../model/json-constraint.js';

interface ServeFlags extends SecurityOpts {
  hostfile?: string;
  hosts?: string;
  sshOption?: string[];
  readyTimeout: number;
  hostModel?: string;
  model: string;
  host: string;
  port: number;
  ctx?: number;
  apiKey?: string;
  virtualNodes?: number;
  parallel: number;
  prefillChunk: number;
  lookup: number;
  lookupShared?: boolean;
  draft?: string;
  draftMax: number;
  draftPMin: number;
}

export function registerServe(program: Command): void {
  addDraftFlags(addSecurityOptions(program.command('serve')))
    .description('an OpenAI-compatible HTTP server (completions, chat, streaming) for a GGUF model')
    .requiredOption('-m, --model <file>', 'the GGUF model (llama, qwen2 or qwen3; F32 … Q6_K)')
    .option('--host <addr>', 'address to listen on (beyond loopback needs --api-key)', '127.0.0.1')
    .option(
      '--port <N>',
      'port (0: any free one)',
      (v) => {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`--port must be 0-65535, got '${v}'`);
        return n;
      },
      8080,
    )
    .option(
      '-c, --ctx <N>',
      'context size of each sequence in tokens (default: the model’s, at most 4096)',
      (v) => parsePositiveInt(v, '--ctx'),
    )
    .option('--api-key <K>', 'require Authorization: Bearer K on every route but /health')
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', (v) =>
      parsePositiveInt(v, '--virtual-nodes'),
    )
    .option('--hostfile <FILE>', 'run the executors on these hosts, started over SSH (see docs/hosts.md)')
    .option('--hosts <LIST>', 'executors already running on hosts: HOST:PORT,HOST:PORT,...')
    .option(
      '--host-model <file>',
      "with --hostfile/--hosts: the model's path on the hosts when it differs from --model's",
    )
    .option(
      '--ssh-option <OPT>',
      'extra ssh -o option for --hostfile, repeatable',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option(
      '--ready-timeout <S>',
      'seconds to wait for every host',
      (v) => parsePositiveInt(v, '--ready-timeout'),
      60,
    )
    .option(
      '--parallel <N>',
      `sequences decoded together, each with its own KV cache of --ctx tokens (1-${MAX_SEQUENCES})`,
      (v) => {
        const n = parsePositiveInt(v, '--parallel');
        if (n > MAX_SEQUENCES) throw new UsageError(`--parallel must be 1-${MAX_SEQUENCES}, got ${n}`);
        return n;
      },
      4,
    )
    .option(
      '--prefill-chunk <N>',
      'prompt tokens per step while other streams decode (smaller: steadier streams, slower first tokens)',
      (v) => parsePositiveInt(v, '--prefill-chunk'),
      64,
    )
    .option(
      '--lookup <N>',
      'prompt lookup: a decoding stream also feeds up to N tokens drafted from its context while a step has fewer than 8 tokens, the same text in fewer steps where it repeats (0 = off, at most 32)',
      lookupTokens,
      0,
    )
    .option(
      '--lookup-shared',
      "with --lookup: draft also from the texts of requests served before (faster where requests repeat each other, as a schema's keys or a template's boilerplate do; but a request's speed then tells something of what others sent and got: for one user's server)",
    )
    .addHelpText(
      'after',
      `
Routes: POST /v1/completions, POST /v1/chat/completions (both with "stream": true for server-sent
events), POST /v1/embeddings, GET /v1/models, POST /tokenize, POST /detokenize, GET /health,
GET /metrics (Prometheus). Chat prompts use the file's tokenizer.chat_template (ChatML when it has
none).
${wrapText(
  "Beside OpenAI's sampling fields: n (choices; the first computes the prompt, the others copy its " +
    'KV cache), lists of prompts, logprobs and echo, logit_bias, response_format json_object (each ' +
    `choice one JSON object) and json_schema (that object keeps to the schema: ${SUPPORTED.join(', ')}; ` +
    'other keywords are refused by name), tools and tool_choice on chat (calls come back as ' +
    'tool_calls; "required" or a function\'s name keeps the answer to a call of it), and llama.cpp\'s ' +
    'top_k, min_p, repeat_penalty, repeat_last_n, ignore_eos.',
)}

Continuous batching: up to --parallel requests decode together, one token each per step (the
weights are read once for all of them); a new request takes a free KV slot at the next step and
its prompt goes in --prefill-chunk tokens per step beside the others; more requests queue. Each
stream gets the tokens it would get alone (row-invariant kernels when --parallel > 1). A client
that disconnects frees its slot before the next step. Every executor holds --parallel KV caches
of --ctx tokens. --lookup N: while a step has rows to spare, a stream feeds tokens drafted from
its context too and keeps those that were the tokens chosen (the same text, fewer steps);
--lookup-shared drafts also from the texts of earlier requests. --draft D.gguf: while one stream
decodes alone, a draft model on executors of its own (this machine's) guesses its next tokens
before each step, and the step checks them (the same text, fewer steps where the draft agrees).
SIGTERM or Ctrl-C finishes the requests in hand, then stops the executors.

Across hosts (--hostfile or --hosts, with --token-file or TLS as for launch): every layer of
every step is split over every executor of every host; the same batching.

Examples:
  redblue serve -m model.gguf --virtual-nodes 2
  redblue serve -m model.gguf --hostfile hosts.txt --parallel 8
  curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":32}'`,
    )
    .action(async (o: ServeFlags) => {
      const remote = Boolean(o.hostfile ?? o.hosts);
      if (remote && o.virtualNodes)
        throw new UsageError(
          '--virtual-nodes splits this machine; with --hostfile/--hosts give it to each host’s executor',
        );
      if (o.lookupShared && !o.lookup)
        throw new UsageError('--lookup-shared drafts for --lookup: give --lookup N too');
      if (o.draft !== undefined && o.lookup)
        throw new UsageError('--draft and --lookup both draft tokens: choose one');
      const bar = new Progress('placing weights');
      const log = (line: string) => process.stderr.write(`redblue serve: ${line}\n`);
      await serve({
        model: o.model,
        ...(remote
          ? {
              hosts: {
                ...(o.hostfile ? { hostfile: o.hostfile } : {}),
                ...(o.hosts ? { hosts: o.hosts } : {}),
                port: DEFAULT_PORT,
                ...(o.sshOption ? { sshOption: o.sshOption } : {}),
                ...(o.tlsCert ? { tlsCert: o.tlsCert, tlsKey: o.tlsKey!, tlsCa: o.tlsCa! } : {}),
                readyTimeout: o.readyTimeout,
                auth: authFromOptions(o),
              },
              ...(o.hostModel ? { hostModel: o.hostModel } : {}),
            }
          : { topology: readTopology({ virtualNodes: o.virtualNodes }) }),
        ...(o.ctx ? { ctx: o.ctx } : {}),
        parallel: o.parallel,
        prefillChunk: o.prefillChunk,
        ...(o.lookup ? { lookup: o.lookup } : {}),
        ...(o.lookupShared ? { lookupShared: true } : {}),
        ...draftOf(o),
        host: o.host,
        port: o.port,
        ...(o.apiKey ? { apiKey: o.apiKey } : {}),
        modelName: basename(o.model),
        onProgress: (done, total) => bar.update(done, total),
        onListening: ({ port, model, template }) => {
          bar.done();
          log(
            `${basename(o.model)} (${model.info.arch}, ${model.info.nLayer} layers) on ${model.perRank.length} executor(s), ${model.slots} sequence(s) of ${model.ctx} tokens; chat prompts from ${template}`,
          );
          // Scripts wait for this line; the port matters with --port 0.
          process.stdout.write(
            `listening on http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}\n`,
          );
        },
        log,
      });
    });
}
