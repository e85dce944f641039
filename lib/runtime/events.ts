// events: container stats in runc's JSON shape (--stats once, or every
// --interval), and OOM events, until the container stops.
import { readFileSync } from 'node:fs';
import { controllerDir, hostHierarchies, type Hierarchy } from '../cgroups';
import { join } from 'node:path';
import { TsrunError } from '../errors';
import { deriveStatus, sleep, type StoredState } from '../state';
import { writeStdout } from '../log';
import { kv, stats } from './stats';
import type { Context } from './context';

function oomKills(st: StoredState, hier: Hierarchy[]): number {
  const m = controllerDir(st.cgroupPaths, 'memory', hier);
  if (!m) return 0;
  let text = '';
  try {
    text = readFileSync(join(m.dir, m.v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
  } catch {
    /* gone */
  }
  return kv(text).oom_kill ?? 0;
}

export function events(ctx: Context, id: string, once: boolean, intervalS: number): void {
  const st = ctx.store.load(id);
  if (deriveStatus(ctx.store, st) === 'stopped') throw new TsrunError('container not running');
  const hier = hostHierarchies();
  const emit = (type: string, data?: unknown) => writeStdout(JSON.stringify(data === undefined ? { type, id } : { type, id, data }) + '\n');
  if (once) {
    emit('stats', stats(st, hier));
    return;
  }
  if (!(intervalS > 0)) throw new TsrunError(`--interval: must be positive, got ${intervalS}`);
  let ooms = oomKills(st, hier);
  let next = 0;
  while (deriveStatus(ctx.store, st) !== 'stopped') {
    const k = oomKills(st, hier);
    if (k > ooms) emit('oom');
    ooms = k;
    if (Date.now() >= next) {
      emit('stats', stats(st, hier));
      next = Date.now() + intervalS * 1000;
    }
    sleep(100);
  }
  // an OOM kill of the init itself stops the container: report it still
  if (oomKills(st, hier) > ooms) emit('oom');
}
