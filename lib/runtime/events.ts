// events: container stats in runc's JSON shape (--stats once, or every
// --interval), and OOM events, until the container stops.
import { readFileSync } from 'node:fs';
import { controllerDir, hostHierarchies, type Hierarchy } from '../cgroups';
import { join } from 'node:path';
import { TsrunError } from '../errors';
import { deriveStatus, sleep, type StoredState } from '../state';
import { writeStdout } from '../log';
import type { Context } from './context';

function rd(dir: string | undefined, f: string): string | undefined {
  if (!dir) return undefined;
  try {
    return readFileSync(join(dir, f), 'utf8').trim();
  } catch {
    return undefined;
  }
}
const n = (s: string | undefined) => (s === undefined || s === 'max' ? 0 : Number(s));

function kv(text: string | undefined): Record<string, number> {
  const o: Record<string, number> = {};
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.split(/\s+/);
    if (k && v !== undefined) o[k] = Number(v);
  }
  return o;
}

export function stats(st: StoredState, hier: Hierarchy[] = hostHierarchies()): Record<string, unknown> {
  const dirFor = (ctrl: string) => controllerDir(st.cgroupPaths, ctrl, hier);
  const cpu = dirFor('cpuacct') ?? dirFor('cpu');
  const mem = dirFor('memory');
  const pids = dirFor('pids');
  const cpuStat = kv(rd(dirFor('cpu')?.dir, 'cpu.stat'));
  const acct = kv(rd(cpu?.dir, 'cpuacct.stat'));
  const tick = 1e7; // USER_HZ 100 -> ns
  const memStat = kv(rd(mem?.dir, 'memory.stat'));
  const m = mem?.dir;
  // v2 files where v1 ones are missing (runc's stats shape either way)
  const usage = cpu?.v2
    ? { total: (cpuStat.usage_usec ?? 0) * 1000, percpu: [] as number[], kernel: (cpuStat.system_usec ?? 0) * 1000, user: (cpuStat.user_usec ?? 0) * 1000 }
    : {
        total: n(rd(cpu?.dir, 'cpuacct.usage')),
        percpu: (rd(cpu?.dir, 'cpuacct.usage_percpu') ?? '').split(/\s+/).filter(Boolean).map(Number),
        kernel: (acct.system ?? 0) * tick,
        user: (acct.user ?? 0) * tick,
      };
  const memory = mem?.v2
    ? {
        cache: memStat.file ?? 0,
        usage: { limit: n(rd(m, 'memory.max')), usage: n(rd(m, 'memory.current')), max: n(rd(m, 'memory.peak')), failcnt: kv(rd(m, 'memory.events')).max ?? 0 },
        swap: { limit: n(rd(m, 'memory.swap.max')), usage: n(rd(m, 'memory.swap.current')), max: n(rd(m, 'memory.swap.peak')), failcnt: 0 },
        raw: memStat,
      }
    : {
        cache: memStat.total_cache ?? memStat.cache ?? 0,
        usage: { limit: n(rd(m, 'memory.limit_in_bytes')), usage: n(rd(m, 'memory.usage_in_bytes')), max: n(rd(m, 'memory.max_usage_in_bytes')), failcnt: n(rd(m, 'memory.failcnt')) },
        swap: { limit: n(rd(m, 'memory.memsw.limit_in_bytes')), usage: n(rd(m, 'memory.memsw.usage_in_bytes')), max: n(rd(m, 'memory.memsw.max_usage_in_bytes')), failcnt: n(rd(m, 'memory.memsw.failcnt')) },
        raw: memStat,
      };
  return {
    cpu: {
      usage,
      throttling: { periods: cpuStat.nr_periods ?? 0, throttled_periods: cpuStat.nr_throttled ?? 0, throttled_time: (cpuStat.throttled_time ?? (cpuStat.throttled_usec ?? 0) * 1000) },
    },
    memory,
    pids: { current: n(rd(pids?.dir, 'pids.current')), limit: n(rd(pids?.dir, 'pids.max')) },
  };
}

function oomKills(st: StoredState, hier: Hierarchy[]): number {
  const m = controllerDir(st.cgroupPaths, 'memory', hier);
  return kv(rd(m?.dir, m?.v2 ? 'memory.events' : 'memory.oom_control')).oom_kill ?? 0;
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
