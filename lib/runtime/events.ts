// events: container stats in runc's JSON shape (--stats once, or every
// --interval), and OOM events, until the container stops.
import { readFileSync } from 'node:fs';
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

function dirFor(st: StoredState, ctrl: string): string | undefined {
  return st.cgroupPaths.find((p) => p.split('/').includes(ctrl)) ?? st.cgroupPaths.find((p) => p.includes('/unified/'));
}

export function stats(st: StoredState): Record<string, unknown> {
  const cpu = dirFor(st, 'cpuacct') ?? dirFor(st, 'cpu');
  const mem = dirFor(st, 'memory');
  const pids = dirFor(st, 'pids');
  const cpuStat = kv(rd(dirFor(st, 'cpu'), 'cpu.stat'));
  const acct = kv(rd(cpu, 'cpuacct.stat'));
  const tick = 1e7; // USER_HZ 100 -> ns
  const memStat = kv(rd(mem, 'memory.stat'));
  return {
    cpu: {
      usage: {
        total: n(rd(cpu, 'cpuacct.usage')),
        percpu: (rd(cpu, 'cpuacct.usage_percpu') ?? '').split(/\s+/).filter(Boolean).map(Number),
        kernel: (acct.system ?? 0) * tick,
        user: (acct.user ?? 0) * tick,
      },
      throttling: { periods: cpuStat.nr_periods ?? 0, throttled_periods: cpuStat.nr_throttled ?? 0, throttled_time: cpuStat.throttled_time ?? 0 },
    },
    memory: {
      cache: memStat.total_cache ?? memStat.cache ?? 0,
      usage: { limit: n(rd(mem, 'memory.limit_in_bytes')), usage: n(rd(mem, 'memory.usage_in_bytes')), max: n(rd(mem, 'memory.max_usage_in_bytes')), failcnt: n(rd(mem, 'memory.failcnt')) },
      swap: { limit: n(rd(mem, 'memory.memsw.limit_in_bytes')), usage: n(rd(mem, 'memory.memsw.usage_in_bytes')), max: n(rd(mem, 'memory.memsw.max_usage_in_bytes')), failcnt: n(rd(mem, 'memory.memsw.failcnt')) },
      raw: memStat,
    },
    pids: { current: n(rd(pids, 'pids.current')), limit: n(rd(pids, 'pids.max')) },
  };
}

function oomKills(st: StoredState): number {
  return kv(rd(dirFor(st, 'memory'), 'memory.oom_control')).oom_kill ?? 0;
}

export function events(ctx: Context, id: string, once: boolean, intervalS: number): void {
  const st = ctx.store.load(id);
  if (deriveStatus(ctx.store, st) === 'stopped') throw new TsrunError('container not running');
  const emit = (type: string, data?: unknown) => writeStdout(JSON.stringify(data === undefined ? { type, id } : { type, id, data }) + '\n');
  if (once) {
    emit('stats', stats(st));
    return;
  }
  if (!(intervalS > 0)) throw new TsrunError(`--interval: must be positive, got ${intervalS}`);
  let ooms = oomKills(st);
  let next = 0;
  while (deriveStatus(ctx.store, st) !== 'stopped') {
    const k = oomKills(st);
    if (k > ooms) emit('oom');
    ooms = k;
    if (Date.now() >= next) {
      emit('stats', stats(st));
      next = Date.now() + intervalS * 1000;
    }
    sleep(100);
  }
  // an OOM kill of the init itself stops the container: report it still
  if (oomKills(st) > ooms) emit('oom');
}
