// linux.memoryPolicy (spec 1.3) -> set_mempolicy(2)'s mode (with its flags)
// and node mask. Pure; every combination the kernel would refuse is refused
// here with the JSON path, before anything exists.
import { TsrunError } from '../errors';

// include/uapi/linux/mempolicy.h
const MODES: Record<string, number> = {
  MPOL_DEFAULT: 0, MPOL_PREFERRED: 1, MPOL_BIND: 2, MPOL_INTERLEAVE: 3, MPOL_LOCAL: 4,
  MPOL_PREFERRED_MANY: 5, MPOL_WEIGHTED_INTERLEAVE: 6,
};
const FLAGS: Record<string, number> = {
  MPOL_F_NUMA_BALANCING: 1 << 13, MPOL_F_RELATIVE_NODES: 1 << 14, MPOL_F_STATIC_NODES: 1 << 15,
};
/** for features: what planMemoryPolicy takes */
export const MEMPOLICY_MODES = Object.keys(MODES);
export const MEMPOLICY_FLAGS = Object.keys(FLAGS);

/** the most nodes a mask may name (the kernel's MAX_NUMNODES is at most 1024) */
const MAX_NODES = 1024;

export interface PlanMemoryPolicy {
  /** mode | flags, as set_mempolicy takes it */
  mode: number;
  /** bits of the node mask (a multiple of 64), 0 for none */
  maxnode: number;
  /** the mask as little-endian 64-bit words */
  nodemask: Buffer;
}

/** "0-3,7" -> node numbers; "" -> none. */
export function parseNodes(list: string, where: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new TsrunError(`${where}: invalid node list entry ${JSON.stringify(part)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a > b) throw new TsrunError(`${where}: invalid node range ${part}`);
    if (b >= MAX_NODES) throw new TsrunError(`${where}: node ${b} is beyond ${MAX_NODES - 1}`);
    for (let n = a; n <= b; n++) out.push(n);
  }
  return out;
}

function mask(nodes: number[]): { maxnode: number; nodemask: Buffer } {
  if (!nodes.length) return { maxnode: 0, nodemask: Buffer.alloc(0) };
  const words = Math.floor(Math.max(...nodes) / 64) + 1;
  const b = Buffer.alloc(words * 8);
  for (const n of nodes) b[Math.floor(n / 8)]! |= 1 << (n % 8);
  return { maxnode: words * 64, nodemask: b };
}

export function planMemoryPolicy(mp: { mode: string; nodes?: string; flags?: string[] } | undefined): PlanMemoryPolicy | undefined {
  if (!mp) return undefined;
  const where = 'config.json: linux.memoryPolicy';
  const base = MODES[mp.mode];
  if (base === undefined) throw new TsrunError(`${where}.mode: unknown mode ${JSON.stringify(mp.mode)}`);
  let flags = 0;
  for (const f of mp.flags ?? []) {
    const v = FLAGS[f];
    if (v === undefined) throw new TsrunError(`${where}.flags: unknown flag ${JSON.stringify(f)}`);
    flags |= v;
  }
  const nodes = parseNodes(mp.nodes ?? '', `${where}.nodes`);
  const nodeFlags = FLAGS.MPOL_F_RELATIVE_NODES! | FLAGS.MPOL_F_STATIC_NODES!;
  if ((flags & nodeFlags) === nodeFlags) throw new TsrunError(`${where}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other`);
  if (flags & FLAGS.MPOL_F_NUMA_BALANCING! && base !== MODES.MPOL_BIND) throw new TsrunError(`${where}.flags: MPOL_F_NUMA_BALANCING needs mode MPOL_BIND`);
  if (base === MODES.MPOL_DEFAULT || base === MODES.MPOL_LOCAL) {
    if (nodes.length) throw new TsrunError(`${where}.nodes: ${mp.mode} takes no nodes`);
    if (flags) throw new TsrunError(`${where}.flags: ${mp.mode} takes no flags`);
  } else if (base === MODES.MPOL_PREFERRED) {
    // no nodes: "local allocation", which node flags cannot qualify
    if (!nodes.length && flags & nodeFlags) throw new TsrunError(`${where}.flags: MPOL_PREFERRED without nodes takes no node flags`);
  } else if (!nodes.length) {
    throw new TsrunError(`${where}.nodes: ${mp.mode} needs at least one node`);
  }
  return { mode: base | flags, ...mask(nodes) };
}
