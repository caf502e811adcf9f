// Brick colours. Up to 64 ranks every rank gets its own colour, built so that a host's nodes form
// a family (a hue sector per host, nodes spread inside it, alternating lightness so neighbours
// differ); above 64 ranks colours are per host, and above 64 hosts a hue ramp over hosts.
import type { Plan } from '../types.js';

export const MAX_DISTINCT = 64;

export type ColourMode = 'rank' | 'host' | 'node';

const LIGHTNESS = [48, 64, 38, 56];

function hsl(h: number, s: number, l: number): string {
  return `hsl(${Math.round(((h % 360) + 360) % 360)} ${s}% ${l}%)`;
}

export interface Colours {
  /** Modes offered in the page; the first is the default. */
  modes: ColourMode[];
  rank(rank: number, host: number, nodeIndex: number): string;
  host(host: number): string;
  node(nodeIndex: number): string;
}

export function coloursFor(plan: Plan): Colours {
  const hosts = Math.max(1, plan.cluster.hosts);
  const ranks = plan.cluster.ranks;
  const maxNodes = Math.max(1, ...plan.cluster.nodesPerHost);
  const sector = 360 / hosts;
  const base = 210; // start at blue: the single-host case looks calm
  const hostHue = (h: number) => base + h * sector;
  const host = (h: number) =>
    hosts <= MAX_DISTINCT
      ? hsl(hostHue(h), 62, LIGHTNESS[h % 2]! + 2)
      : hsl(base + (h * 300) / (hosts - 1), 60, LIGHTNESS[h % 3]!);
  const node = (j: number) => hsl(base + (j * 360) / maxNodes, 58, LIGHTNESS[j % LIGHTNESS.length]!);
  const rank = (_r: number, h: number, j: number) => {
    if (ranks > MAX_DISTINCT) return host(h);
    const nodes = Math.max(1, plan.cluster.nodesPerHost[h] ?? 1);
    // Nodes take 75% of the host's sector so that neighbouring hosts stay apart.
    const width = hosts === 1 ? 360 : sector * 0.75;
    const offset =
      nodes === 1 ? 0 : hosts === 1 ? (j * width) / nodes : -width / 2 + (j * width) / (nodes - 1);
    return hsl(hostHue(h) + offset, 64, LIGHTNESS[j % LIGHTNESS.length]!);
  };
  const modes: ColourMode[] = ranks <= MAX_DISTINCT ? ['rank', 'host', 'node'] : ['host', 'node'];
  return { modes, rank, host, node };
}
