// Pretend hosts on one machine: network namespaces joined through a bridge (itself in a namespace
// of its own), each with an address in 10.213.S.0/24. Needs root. Used by the multi-host tests
// and `redblue bench transport`. Traffic only ever goes to addresses inside these namespaces;
// everything is removed by cleanup(), and labs left by a killed run are removed on the next one.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const PREFIX = 'rblab';

export interface Lab {
  /** Namespace of pretend host i. */
  readonly names: string[];
  /** Its address (10.213.S.(i+1)). */
  readonly addresses: string[];
  /** The interface of host i that leads to the bridge. */
  readonly dev: string;
  spawn(i: number, command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Takes host i's link down (a cable pulled). */
  linkDown(i: number): void;
  /** pids of processes running inside host i's namespace. */
  pids(i: number): number[];
  cleanup(): void;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  try {
    return ip(['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter(Boolean);
  } catch {
    return [];
  }
}

function nsPids(ns: string): number[] {
  try {
    return ip(['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function removeNamespace(ns: string): void {
  for (const pid of nsPids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  try {
    ip(['netns', 'del', ns]);
  } catch {
    // already removed
  }
}

/** Removes labs whose creating process is gone. */
export function removeStaleLabs(): void {
  for (const ns of listNamespaces()) {
    const m = new RegExp(`^${PREFIX}(\\d+)x`).exec(ns);
    if (m && !isAlive(Number(m[1]))) removeNamespace(ns);
  }
}

let labCount = 0;

/** `hosts` namespaces on one bridge. Throws (after undoing what it made) if not root. */
export function createLab(hosts: number): Lab {
  if (hosts < 1 || hosts > 8) throw new Error('a lab has 1 to 8 hosts');
  removeStaleLabs();
  const id = `${PREFIX}${process.pid}x${labCount++}`;
  // A subnet per lab, so that labs of concurrent runs never share addresses.
  const subnet = 1 + ((process.pid * 7 + labCount * 13) % 250);
  const sw = `${id}sw`;
  const names = Array.from({ length: hosts }, (_, i) => `${id}h${i}`);
  const addresses = names.map((_, i) => `10.213.${subnet}.${i + 1}`);
  const made: string[] = [];
  const dev = 'eth0';
  try {
    ip(['netns', 'add', sw]);
    made.push(sw);
    ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    ip(['-n', sw, 'link', 'set', 'lo', 'up']);
    names.forEach((ns, i) => {
      ip(['netns', 'add', ns]);
      made.push(ns);
      // Both ends are made inside the host namespace, then one is moved to the bridge's.
      ip(['-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `p${i}`]);
      ip(['-n', ns, 'link', 'set', `p${i}`, 'netns', sw]);
      ip(['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0']);
      ip(['-n', sw, 'link', 'set', `p${i}`, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addresses[i]}/24`, 'dev', dev]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    });
  } catch (e) {
    for (const ns of made) removeNamespace(ns);
    throw new Error(`cannot make network namespaces (root needed): ${(e as Error).message}`);
  }
  return {
    names,
    addresses,
    dev,
    spawn: (i, command, args, options = {}) =>
      spawn('ip', ['netns', 'exec', names[i]!, command, ...args], options),
    linkDown: (i) => {
      ip(['-n', names[i]!, 'link', 'set', dev, 'down']);
    },
    pids: (i) => nsPids(names[i]!),
    cleanup: () => {
      for (const ns of [...names, sw]) removeNamespace(ns);
    },
  };
}
