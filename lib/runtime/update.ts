// update: change the resources of a running container (runc's flags, or
// LinuxResources JSON with --resources FILE|-, as containerd sends it).
import { readFileSync } from 'node:fs';
import { TsrunError } from '../errors';
import { hierarchyOf, hostHierarchies, type CgroupSetup } from '../cgroups';
import { applyResources, deviceFilterTarget } from '../cgroups/resources';
import type { Context } from './context';
import { deriveStatus } from '../state';

export interface UpdateFlags {
  resources?: string;
  blkioWeight?: number;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuShare?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: number;
  cpuBurst?: string;
  cpuIdle?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4 };

/** "512m", "1G", "1048576", "-1" -> bytes (docker's RAMInBytes, as runc uses). */
export function parseBytes(flag: string, v: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?b?)$/i.exec(v.trim());
  if (!m) throw new TsrunError(`invalid value for --${flag}: ${JSON.stringify(v)}`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

function num(flag: string, v: string): number {
  if (!/^-?\d+$/.test(v)) throw new TsrunError(`invalid value for --${flag}: ${JSON.stringify(v)}`);
  return Number(v);
}

/** The LinuxResources an update asks for: the JSON first, flags on top. */
export function resourcesFrom(f: UpdateFlags, stdin: () => string): Record<string, Record<string, unknown>> {
  if (f.l3CacheSchema !== undefined || f.memBwSchema !== undefined) {
    throw new TsrunError(`--${f.l3CacheSchema !== undefined ? 'l3-cache-schema' : 'mem-bw-schema'}: Intel RDT is not supported by tsrun`);
  }
  let r: Record<string, Record<string, unknown>> = {};
  if (f.resources) {
    const text = f.resources === '-' ? stdin() : readFileSync(f.resources, 'utf8');
    try {
      r = JSON.parse(text);
    } catch (e) {
      throw new TsrunError(`--resources: invalid JSON: ${(e as Error).message}`);
    }
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new TsrunError('--resources: must be a LinuxResources JSON object');
  }
  const set = (sec: string, k: string, v: unknown) => {
    r[sec] = { ...(r[sec] ?? {}), [k]: v };
  };
  if (f.blkioWeight !== undefined) set('blockIO', 'weight', f.blkioWeight);
  if (f.cpuPeriod !== undefined) set('cpu', 'period', num('cpu-period', f.cpuPeriod));
  if (f.cpuQuota !== undefined) set('cpu', 'quota', num('cpu-quota', f.cpuQuota));
  if (f.cpuShare !== undefined) set('cpu', 'shares', num('cpu-share', f.cpuShare));
  if (f.cpuRtPeriod !== undefined) set('cpu', 'realtimePeriod', num('cpu-rt-period', f.cpuRtPeriod));
  if (f.cpuRtRuntime !== undefined) set('cpu', 'realtimeRuntime', num('cpu-rt-runtime', f.cpuRtRuntime));
  if (f.cpusetCpus !== undefined) set('cpu', 'cpus', f.cpusetCpus);
  if (f.cpusetMems !== undefined) set('cpu', 'mems', f.cpusetMems);
  if (f.memory !== undefined) set('memory', 'limit', parseBytes('memory', f.memory));
  if (f.memoryReservation !== undefined) set('memory', 'reservation', parseBytes('memory-reservation', f.memoryReservation));
  if (f.memorySwap !== undefined) set('memory', 'swap', parseBytes('memory-swap', f.memorySwap));
  if (f.pidsLimit !== undefined) set('pids', 'limit', f.pidsLimit);
  if (f.cpuBurst !== undefined) set('cpu', 'burst', num('cpu-burst', f.cpuBurst));
  if (f.cpuIdle !== undefined) set('cpu', 'idle', num('cpu-idle', f.cpuIdle));
  return r;
}

/**
 * The update on top of what was applied before, section by section (runc's
 * merge): a lone --memory-swap still knows the memory limit it adds to. Lists
 * (devices, hugepage limits, throttles) replace the old ones.
 */
export function mergeResources(saved: Record<string, unknown> | undefined, res: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(res)) {
    const old = saved?.[k];
    const both = v && typeof v === 'object' && !Array.isArray(v) && old && typeof old === 'object' && !Array.isArray(old);
    out[k] = both ? { ...(old as Record<string, unknown>), ...v } : v;
  }
  // runc: an unlimited memory with no swap given lifts the swap limit too (not the saved one)
  const mem = res.memory as { limit?: number; swap?: number } | undefined;
  if (mem?.limit === -1 && mem.swap === undefined && out.memory && 'swap' in out.memory) out.memory = { ...out.memory, swap: -1 };
  return out;
}

export function update(ctx: Context, id: string, f: UpdateFlags, stdin: () => string): void {
  const st = ctx.store.load(id);
  const res = resourcesFrom(f, stdin);
  const unlock = ctx.store.lock(id);
  try {
    const status = deriveStatus(ctx.store, st);
    if (status === 'stopped') throw new TsrunError('container not running');
    const hier = hostHierarchies();
    const setup: CgroupSetup = { paths: [], created: [], procs: [], hierarchies: [], inner: '' };
    for (const p of st.cgroupPaths) {
      const h = hierarchyOf(p, hier);
      if (!h) continue;
      setup.paths.push(p);
      setup.hierarchies.push(h);
    }
    // the device list is only rewritten when the update carries one
    const merged = mergeResources(st.resources, res);
    applyResources(setup, merged);
    // pure v2: the list is an eBPF program, replaced by the new list's
    const df = res.devices ? deviceFilterTarget(setup, res) : undefined;
    if (df) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { deviceProgram } = require('../cgroups/devices-ebpf') as typeof import('../cgroups/devices-ebpf');
      ctx.sys().attachDeviceFilter(df.dir, deviceProgram(df.rules));
    }
    // what a later update, events and state start from
    const cur = ctx.store.load(id); // read again under the lock
    ctx.store.save({ ...cur, resources: { ...(cur.resources ?? {}), ...merged } });
  } finally {
    unlock();
  }
}
