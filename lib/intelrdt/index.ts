// linux.intelRdt (config-linux.md#intelrdt) against a mounted resctrl: the
// CLOS directory to use or make, the schemata to write (with the spec's
// rules for combining l3CacheSchema, memBwSchema and schemata), and the
// tasks file the container process joins. The resctrl root and the file
// operations are parameters: unit-tested on a temp dir.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors';

export interface IntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  schemata?: string;
  enableCMT?: boolean;
  enableMBM?: boolean;
}

export interface RdtPlan {
  /** the CLOS directory under the resctrl root */
  dir: string;
  /** schemata lines to write, in order (l3/memBw combined first, then schemata) */
  writes: string[];
  /** tsrun makes the directory (and removes it with the container) */
  create: boolean;
}

const P = 'config.json: linux.intelRdt';

/** The resctrl mount point in mountinfo text, if any. */
export function resctrlRoot(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep > 0 && line.slice(sep + 3).startsWith('resctrl ')) return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

/** l3CacheSchema and memBwSchema as the one value the spec says to write. */
export function combinedSchema(rdt: IntelRdt): string | undefined {
  if (rdt.memBwSchema !== undefined && (!rdt.memBwSchema.startsWith('MB:') || /\n/.test(rdt.memBwSchema))) {
    throw new TsrunError(`${P}.memBwSchema: must start with "MB:" and hold no newline`);
  }
  if (rdt.l3CacheSchema === undefined) return rdt.memBwSchema;
  // an MB: line in l3CacheSchema gives way to memBwSchema
  const l3 = rdt.l3CacheSchema.split('\n').filter((l) => l && !(rdt.memBwSchema !== undefined && l.startsWith('MB:')));
  return [...l3, ...(rdt.memBwSchema !== undefined ? [rdt.memBwSchema] : [])].join('\n');
}

/** What the existing CLOS directory's schemata says for each resource line we would write. */
function matches(existing: string, want: string): boolean {
  const norm = (s: string) => s.split('\n').map((l) => l.trim().replace(/\s+/g, '')).filter(Boolean);
  const have = new Map(norm(existing).map((l) => [l.split(':')[0]!, l]));
  return norm(want).every((l) => have.get(l.split(':')[0]!) === l);
}

export function planRdt(rdt: IntelRdt, containerId: string, root: string): RdtPlan {
  if (rdt.enableCMT || rdt.enableMBM) {
    throw new TsrunError(`${P}.${rdt.enableCMT ? 'enableCMT' : 'enableMBM'}: RDT monitoring is not implemented in tsrun`);
  }
  if (rdt.closID !== undefined && (!/^[^/\0]+$/.test(rdt.closID) || rdt.closID === '.' || rdt.closID === '..')) {
    throw new TsrunError(`${P}.closID: ${JSON.stringify(rdt.closID)} is not a directory name`);
  }
  const combined = combinedSchema(rdt);
  const writes = [...(combined !== undefined ? [combined] : []), ...(rdt.schemata !== undefined ? [rdt.schemata] : [])];
  const dir = join(root, rdt.closID ?? containerId);
  const exists = existsSync(dir);
  if (rdt.closID !== undefined && !writes.length) {
    // a pre-configured CLOS: joined as it is
    if (!exists) throw new TsrunError(`${P}.closID: the CLOS ${rdt.closID} does not exist under ${root}`);
    return { dir, writes, create: false };
  }
  if (rdt.closID !== undefined && exists && combined !== undefined) {
    const have = readFileSync(join(dir, 'schemata'), 'utf8');
    if (!matches(have, combined)) throw new TsrunError(`${P}: the schemata of the existing CLOS ${rdt.closID} do not match l3CacheSchema/memBwSchema`);
  }
  return { dir, writes, create: !exists };
}

/** Make the CLOS if asked, write its schemata, put PID in it. Returns whether it was made. */
export function applyRdt(plan: RdtPlan, pid: number): void {
  const what = (w: string) => `${P}: ${w}`;
  try {
    if (plan.create) mkdirSync(plan.dir);
    for (const s of plan.writes) writeFileSync(join(plan.dir, 'schemata'), s.endsWith('\n') ? s : s + '\n');
    writeFileSync(join(plan.dir, 'tasks'), String(pid));
  } catch (e) {
    throw new TsrunError(what(`${(e as NodeJS.ErrnoException).syscall ?? 'write'} ${plan.dir}`), { errno: (e as NodeJS.ErrnoException).code });
  }
}

/** The CLOS directory tsrun made, removed with the container. */
export function removeRdt(dir: string | undefined): void {
  if (!dir) return;
  try {
    rmdirSync(dir);
  } catch {
    /* gone, or still in use by others */
  }
}
