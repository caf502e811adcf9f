// The hostfile of `redblue launch --hostfile FILE`: one host per line, then key=value options.
//
//   # host          options (all optional)
//   node1           user=alice ssh-port=22 identity=~/.ssh/id_ed25519 port=7070
//   node2           known-hosts=~/cluster_known_hosts
//   10.0.0.2        listen=10.0.0.2 virtual-nodes=2 data-port=7071 command="/opt/redblue/bin/redblue"
//   ib-node3        transport=ucx
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isTransportChoice, type TransportChoice } from '../../transport/control.js';

export interface HostEntry {
  /** Name or address to reach the host by (ssh and gRPC). */
  host: string;
  user?: string;
  sshPort?: number;
  identity?: string;
  /** known_hosts file to check the host's key against (strictly). */
  knownHosts?: string;
  /** Port the executor serves on. */
  port: number;
  /** Address the executor binds (default: `host`). */
  listen?: string;
  virtualNodes?: number;
  /** Port of the host's native data path (absent: a free one). */
  dataPort?: number;
  /** How to run redblue on that host. */
  command: string;
  /** How its leader exchanges with the other hosts' leaders (`redblue executor --transport`). */
  transport?: TransportChoice;
}

export const DEFAULT_PORT = 7070;
/** The options a hostfile line may give (key=value). */
export const HOSTFILE_KEYS = [
  'user',
  'ssh-port',
  'identity',
  'known-hosts',
  'port',
  'listen',
  'virtual-nodes',
  'data-port',
  'command',
  'transport',
] as const;

/** Splits on blanks, keeping "double quoted" or 'single quoted' runs together. */
function words(line: string, where: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur ??= '';
    } else if (/\s/.test(ch)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else cur = (cur ?? '') + ch;
  }
  if (quote) throw new Error(`${where}: unbalanced quotes in '${line.trim()}'`);
  if (cur !== undefined) out.push(cur);
  return out;
}

function port(v: string, what: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535)
    throw new Error(`${what} must be a port number (1-65535), got '${v}'`);
  return n;
}

export function parseHostfile(
  text: string,
  file = 'hostfile',
  defaults: { port?: number; command?: string } = {},
): HostEntry[] {
  const out: HostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    const [host, ...opts] = words(line, where);
    if (!host || !/^[\w.:[\]-]+$/.test(host))
      throw new Error(`${where}: '${host}' is not a host name or address`);
    const e: HostEntry = {
      host,
      port: defaults.port ?? DEFAULT_PORT,
      command: defaults.command ?? 'redblue',
    };
    for (const o of opts) {
      const eq = o.indexOf('=');
      const key = eq > 0 ? o.slice(0, eq) : o;
      const val = eq > 0 ? o.slice(eq + 1) : '';
      if (!(HOSTFILE_KEYS as readonly string[]).includes(key)) {
        throw new Error(`${where}: unknown option '${key}' (known: ${HOSTFILE_KEYS.join(', ')})`);
      }
      if (!val) throw new Error(`${where}: ${key} needs a value (${key}=...)`);
      if (key === 'user') {
        if (!/^[\w.-]+$/.test(val)) throw new Error(`${where}: user '${val}' is not a user name`);
        e.user = val;
      } else if (key === 'ssh-port') e.sshPort = port(val, `${where}: ssh-port`);
      else if (key === 'port') e.port = port(val, `${where}: port`);
      else if (key === 'data-port') e.dataPort = port(val, `${where}: data-port`);
      else if (key === 'identity') e.identity = val.replace(/^~(?=\/)/, homedir());
      else if (key === 'known-hosts') e.knownHosts = val.replace(/^~(?=\/)/, homedir());
      else if (key === 'listen') e.listen = val;
      else if (key === 'virtual-nodes') {
        const n = Number(val);
        if (!/^\d+$/.test(val) || n < 1)
          throw new Error(`${where}: virtual-nodes must be a whole number ≥ 1`);
        e.virtualNodes = n;
      } else if (key === 'transport') {
        if (!isTransportChoice(val))
          throw new Error(`${where}: transport must be auto, ucx or grpc, got '${val}'`);
        e.transport = val;
      } else e.command = val;
    }
    out.push(e);
  });
  if (out.length === 0) throw new Error(`${file} lists no hosts`);
  const seen = new Set<string>();
  for (const e of out) {
    const id = `${e.host}:${e.port}`;
    if (seen.has(id)) throw new Error(`${file}: ${id} appears twice`);
    seen.add(id);
  }
  return out;
}

export function readHostfile(path: string, defaults: { port?: number; command?: string } = {}): HostEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read hostfile ${path}: ${(e as Error).message}`);
  }
  return parseHostfile(text, path, defaults);
}

/** "h1:7070,h2:7070,[::1]:7071" → gRPC addresses. */
export function parseHostList(list: string): string[] {
  const out = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (out.length === 0) throw new Error('--hosts lists no hosts');
  for (const a of out) {
    if (!/^(?:\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(a))
      throw new Error(`--hosts: '${a}' is not HOST:PORT`);
  }
  return out;
}
