// linux.resources -> cgroup files, before the container runs. v1 controllers
// where they are mounted (this host), the unified hierarchy for controllers it
// has enabled. A limit that cannot be applied is an error naming the JSON path
// and the file: a container never runs without the limits it asked for.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors';
import type { CgroupSetup } from './index';

/* eslint-disable @typescript-eslint/no-explicit-any */
type R = Record<string, any>;

export interface DeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

/** runc's default allow list (specconv.AllowedDevices), after the config's rules. */
export const DEFAULT_DEVICE_RULES: DeviceRule[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

/** "c 1:3 rwm" as devices.allow/deny take it; -1 or absent = "*". */
export function deviceRuleLine(r: DeviceRule): string {
  const n = (v: number | undefined) => (v === undefined || v < 0 ? '*' : String(v));
  // the kernel takes only r, w and m (checkSpec warned about the rest)
  const access = r.access === undefined ? 'rwm' : [...new Set(r.access)].filter((c) => 'rwm'.includes(c)).join('');
  return `${r.type ?? 'a'} ${n(r.major)}:${n(r.minor)} ${access}`;
}

/** cpu.shares (2..262144) -> cpu.weight (1..10000), as runc converts. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** blkio.weight (10..1000) -> io.weight (1..10000), as runc converts. */
export function blkioToIoWeight(w: number): number {
  if (w === 0) return 0;
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

interface Target {
  dir: string;
  version: 1 | 2;
}

function v1Dir(s: CgroupSetup, controller: string): string | undefined {
  const i = s.hierarchies.findIndex((h) => h.version === 1 && h.controllers.includes(controller));
  return i < 0 ? undefined : s.paths[i];
}

function v2Dir(s: CgroupSetup): string | undefined {
  const i = s.hierarchies.findIndex((h) => h.version === 2);
  return i < 0 ? undefined : s.paths[i];
}

function v2Controllers(dir: string): string[] {
  try {
    return readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

function target(s: CgroupSetup, controller: string, jsonPath: string): Target {
  const d1 = v1Dir(s, controller);
  if (d1) return { dir: d1, version: 1 };
  const d2 = v2Dir(s);
  if (d2 && v2Controllers(d2).includes(controller)) return { dir: d2, version: 2 };
  throw new TsrunError(`config.json: ${jsonPath}: the ${controller} cgroup controller is not available on this host`);
}

function write(dir: string, file: string, value: string | number, jsonPath: string): void {
  try {
    writeFileSync(join(dir, file), String(value));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TsrunError(`config.json: ${jsonPath}: write ${value} to ${join(dir, file)}`, { errno: code });
  }
}

function checkLimit(v: number, path: string): void {
  if (v < -1) throw new TsrunError(`config.json: ${path}: ${v} is not a limit (use -1 for unlimited)`);
}

export function applyResources(s: CgroupSetup, res: R | undefined): void {
  if (!res) return;
  applyMemory(s, res.memory as R | undefined);
  applyCpu(s, res.cpu as R | undefined);
  applyPids(s, res.pids as R | undefined);
  applyBlockIO(s, res.blockIO as R | undefined);
  applyHugepages(s, res.hugepageLimits as R[] | undefined);
  applyNetwork(s, res.network as R | undefined);
  applyUnified(s, res.unified as Record<string, string> | undefined);
  applyRdma(s, (res.rdma ?? {}) as Record<string, { hcaHandles?: number; hcaObjects?: number }>);
  applyDeviceRules(s, res.devices as DeviceRule[] | undefined);
}

const P = 'linux.resources';

function applyMemory(s: CgroupSetup, mem: R | undefined): void {
  if (mem && Object.keys(mem).length) {
    const t = target(s, 'memory', `${P}.memory`);
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) if (mem[k] !== undefined) checkLimit(mem[k], `${P}.memory.${k}`);
    if (mem.checkBeforeUpdate && mem.limit !== undefined && mem.limit > 0) {
      // runc: refuse a limit below what the container already uses
      let used = 0;
      try {
        used = Number(readFileSync(join(t.dir, t.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'), 'utf8'));
      } catch {
        /* no usage file: nothing to compare */
      }
      if (mem.limit < used) throw new TsrunError(`config.json: ${P}.memory.limit: ${mem.limit} is below the current usage ${used} (checkBeforeUpdate)`);
    }
    if (t.version === 1) memoryV1(t.dir, mem);
    else memoryV2(t.dir, mem);
  }
}

/** DIR, when FILE is there; else the setting K cannot be applied on this host */
function needFile(dir: string, file: string, k: string): string {
  if (!existsSync(join(dir, file))) throw new TsrunError(`config.json: ${P}.memory.${k}: this host's memory controller has no ${file}`);
  return dir;
}

function memoryV1(dir: string, mem: R): void {
  if (mem.useHierarchy !== undefined) write(needFile(dir, 'memory.use_hierarchy', 'useHierarchy'), 'memory.use_hierarchy', mem.useHierarchy ? 1 : 0, `${P}.memory.useHierarchy`);
  const limit = mem.limit;
  const hasMemsw = existsSync(join(dir, 'memory.memsw.limit_in_bytes'));
  // runc: an unlimited memory with no swap given lifts the swap limit too
  const swap = mem.swap ?? (limit === -1 && hasMemsw ? -1 : undefined);
  if (swap !== undefined && swap !== 0 && !hasMemsw && swap !== -1) {
    throw new TsrunError(`config.json: ${P}.memory.swap: swap accounting (memory.memsw) is not enabled on this host`);
  }
  // memsw must stay >= limit at every step: runc's order, from the current limit
  const setLimit = () => limit !== undefined && write(dir, 'memory.limit_in_bytes', limit, `${P}.memory.limit`);
  const setSwap = () => swap !== undefined && hasMemsw && write(dir, 'memory.memsw.limit_in_bytes', swap, `${P}.memory.swap`);
  const swapFirst = !!limit && !!swap && (swap === -1 || Number(readFileSync(join(dir, 'memory.limit_in_bytes'), 'utf8')) < swap);
  if (swapFirst) setSwap();
  setLimit();
  if (!swapFirst) setSwap();
  if (mem.reservation !== undefined) write(dir, 'memory.soft_limit_in_bytes', mem.reservation, `${P}.memory.reservation`);
  // a kernel without them (they went in Linux 6.x): refused, not skipped
  if (mem.kernel !== undefined) write(needFile(dir, 'memory.kmem.limit_in_bytes', 'kernel'), 'memory.kmem.limit_in_bytes', mem.kernel, `${P}.memory.kernel`);
  if (mem.kernelTCP !== undefined) write(needFile(dir, 'memory.kmem.tcp.limit_in_bytes', 'kernelTCP'), 'memory.kmem.tcp.limit_in_bytes', mem.kernelTCP, `${P}.memory.kernelTCP`);
  if (mem.swappiness !== undefined) {
    if (mem.swappiness > 100) throw new TsrunError(`config.json: ${P}.memory.swappiness: ${mem.swappiness} is above 100`);
    write(dir, 'memory.swappiness', mem.swappiness, `${P}.memory.swappiness`);
  }
  if (mem.disableOOMKiller) write(dir, 'memory.oom_control', 1, `${P}.memory.disableOOMKiller`);
}

/** v1 memory settings that cgroup v2 has no file for */
const V1_ONLY_MEMORY = ['kernel', 'kernelTCP', 'swappiness'];

function memoryV2(dir: string, mem: R): void {
  for (const k of V1_ONLY_MEMORY) {
    if (mem[k] !== undefined) throw new TsrunError(`config.json: ${P}.memory.${k}: not supported on cgroup v2`);
  }
  // v2 is always hierarchical: only false cannot be honoured
  if (mem.useHierarchy === false) throw new TsrunError(`config.json: ${P}.memory.useHierarchy: false is not supported on cgroup v2 (always hierarchical)`);
  const max = (v: number) => (v === -1 ? 'max' : v);
  if (mem.limit !== undefined) write(dir, 'memory.max', max(mem.limit), `${P}.memory.limit`);
  if (mem.reservation !== undefined) write(dir, 'memory.low', max(mem.reservation), `${P}.memory.reservation`);
  if (mem.swap !== undefined) {
    // v1 swap is memory+swap; v2 swap.max is swap alone
    const sw = mem.swap === -1 ? 'max' : mem.limit > 0 ? Math.max(0, mem.swap - mem.limit) : mem.swap;
    write(dir, 'memory.swap.max', sw, `${P}.memory.swap`);
  }
  if (mem.disableOOMKiller) write(dir, 'memory.oom.group', 0, `${P}.memory.disableOOMKiller`);
}

function applyCpu(s: CgroupSetup, cpu: R | undefined): void {
  if (cpu && Object.keys(cpu).some((k) => k !== 'cpus' && k !== 'mems')) {
    const t = target(s, 'cpu', `${P}.cpu`);
    if (t.version === 1) {
      if (cpu.shares !== undefined) write(t.dir, 'cpu.shares', cpu.shares, `${P}.cpu.shares`);
      if (cpu.period !== undefined) write(t.dir, 'cpu.cfs_period_us', cpu.period, `${P}.cpu.period`);
      if (cpu.quota !== undefined) write(t.dir, 'cpu.cfs_quota_us', cpu.quota, `${P}.cpu.quota`);
      if (cpu.burst !== undefined) write(t.dir, 'cpu.cfs_burst_us', cpu.burst, `${P}.cpu.burst`);
      if (cpu.realtimePeriod !== undefined) write(t.dir, 'cpu.rt_period_us', cpu.realtimePeriod, `${P}.cpu.realtimePeriod`);
      if (cpu.realtimeRuntime !== undefined) write(t.dir, 'cpu.rt_runtime_us', cpu.realtimeRuntime, `${P}.cpu.realtimeRuntime`);
      if (cpu.idle !== undefined) write(t.dir, 'cpu.idle', cpu.idle, `${P}.cpu.idle`);
    } else {
      // as runc: cgroup v2 has no realtime group scheduling knobs
      if (cpu.realtimeRuntime !== undefined || cpu.realtimePeriod !== undefined) {
        throw new TsrunError(`config.json: ${P}.cpu.realtime${cpu.realtimeRuntime !== undefined ? 'Runtime' : 'Period'}: not supported on cgroup v2`);
      }
      if (cpu.shares !== undefined) write(t.dir, 'cpu.weight', sharesToWeight(cpu.shares), `${P}.cpu.shares`);
      if (cpu.quota !== undefined || cpu.period !== undefined) {
        const q = cpu.quota === undefined || cpu.quota < 0 ? 'max' : cpu.quota;
        write(t.dir, 'cpu.max', `${q} ${cpu.period ?? 100000}`, `${P}.cpu.quota`);
      }
      if (cpu.burst !== undefined) write(t.dir, 'cpu.max.burst', cpu.burst, `${P}.cpu.burst`);
      if (cpu.idle !== undefined) write(t.dir, 'cpu.idle', cpu.idle, `${P}.cpu.idle`);
    }
  }
  if (cpu?.cpus !== undefined || cpu?.mems !== undefined) {
    const t = target(s, 'cpuset', `${P}.cpu.cpus`);
    if (cpu.cpus !== undefined) write(t.dir, 'cpuset.cpus', cpu.cpus, `${P}.cpu.cpus`);
    if (cpu.mems !== undefined) write(t.dir, 'cpuset.mems', cpu.mems, `${P}.cpu.mems`);
  }

}

function applyPids(s: CgroupSetup, pids: R | undefined): void {
  if (pids?.limit !== undefined) {
    const t = target(s, 'pids', `${P}.pids.limit`);
    checkLimit(pids.limit, `${P}.pids.limit`);
    // -1 is unlimited; 0 is a real limit on v1 as on v2 (spec 1.3; runc 1.1 read 0 on v1 as unlimited)
    const v = pids.limit === -1 ? 'max' : pids.limit;
    write(t.dir, 'pids.max', v, `${P}.pids.limit`);
  }

}

function applyBlockIO(s: CgroupSetup, bio: R | undefined): void {
  if (bio && Object.keys(bio).length) {
    const t = target(s, t2(s, 'blkio', 'io'), `${P}.blockIO`);
    const dev = (d: R) => `${d.major}:${d.minor}`;
    if (t.version === 1) {
      const wfile = existsSync(join(t.dir, 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight';
      if (bio.weight !== undefined) write(t.dir, wfile, bio.weight, `${P}.blockIO.weight`);
      if (bio.leafWeight !== undefined) write(t.dir, 'blkio.leaf_weight', bio.leafWeight, `${P}.blockIO.leafWeight`);
      for (const [i, d] of (bio.weightDevice ?? []).entries()) {
        if (d.weight !== undefined) write(t.dir, `${wfile}_device`, `${dev(d)} ${d.weight}`, `${P}.blockIO.weightDevice[${i}]`);
        if (d.leafWeight !== undefined) write(t.dir, 'blkio.leaf_weight_device', `${dev(d)} ${d.leafWeight}`, `${P}.blockIO.weightDevice[${i}]`);
      }
      const thr: [string, string][] = [
        ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'], ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
        ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'], ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
      ];
      for (const [k, f] of thr) for (const [i, d] of (bio[k] ?? []).entries()) write(t.dir, f, `${dev(d)} ${d.rate}`, `${P}.blockIO.${k}[${i}]`);
    } else {
      if (bio.weight !== undefined) write(t.dir, 'io.weight', `default ${blkioToIoWeight(bio.weight)}`, `${P}.blockIO.weight`);
      for (const [i, d] of (bio.weightDevice ?? []).entries()) {
        if (d.weight !== undefined) write(t.dir, 'io.weight', `${dev(d)} ${blkioToIoWeight(d.weight)}`, `${P}.blockIO.weightDevice[${i}]`);
      }
      const thr: [string, string][] = [['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'], ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops']];
      for (const [k, key] of thr) for (const [i, d] of (bio[k] ?? []).entries()) write(t.dir, 'io.max', `${dev(d)} ${key}=${d.rate}`, `${P}.blockIO.${k}[${i}]`);
    }
  }

}

function applyHugepages(s: CgroupSetup, limits: R[] | undefined): void {
  for (const [i, h] of (limits ?? []).entries()) {
    const t = target(s, 'hugetlb', `${P}.hugepageLimits[${i}]`);
    const file = t.version === 1 ? `hugetlb.${h.pageSize}.limit_in_bytes` : `hugetlb.${h.pageSize}.max`;
    if (!existsSync(join(t.dir, file))) throw new TsrunError(`config.json: ${P}.hugepageLimits[${i}].pageSize: page size ${h.pageSize} is not supported by this host`);
    write(t.dir, file, h.limit, `${P}.hugepageLimits[${i}]`);
    // spec 1.3: the limit is of reservations where the kernel accounts them (the rsvd files)
    const rsvd = t.version === 1 ? `hugetlb.${h.pageSize}.rsvd.limit_in_bytes` : `hugetlb.${h.pageSize}.rsvd.max`;
    if (existsSync(join(t.dir, rsvd))) write(t.dir, rsvd, h.limit, `${P}.hugepageLimits[${i}]`);
  }

}

function applyNetwork(s: CgroupSetup, net: R | undefined): void {
  if (net?.classID !== undefined) write(target(s, 'net_cls', `${P}.network.classID`).dir, 'net_cls.classid', net.classID, `${P}.network.classID`);
  for (const [i, p] of ((net?.priorities as R[] | undefined) ?? []).entries()) {
    write(target(s, 'net_prio', `${P}.network.priorities`).dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `${P}.network.priorities[${i}]`);
  }

}

function applyUnified(s: CgroupSetup, uni: Record<string, string> | undefined): void {
  if (uni && Object.keys(uni).length) {
    const d = v2Dir(s);
    if (!d) throw new TsrunError(`config.json: ${P}.unified: there is no cgroup v2 hierarchy on this host`);
    for (const [k, v] of Object.entries(uni)) {
      if (k.includes('/') || k.startsWith('.')) throw new TsrunError(`config.json: ${P}.unified: invalid key ${JSON.stringify(k)}`);
      const ctrl = k.split('.')[0]!;
      // hybrid host: a controller bound to v1 has no v2 files (runc refuses unified on v1 outright)
      if (v1Dir(s, ctrl)) throw new TsrunError(`config.json: ${P}.unified.${k}: invalid configuration: cannot use unified on cgroup v1 (the ${ctrl} controller is on a v1 hierarchy here)`);
      if (!existsSync(join(d, k))) {
        throw new TsrunError(`config.json: ${P}.unified.${k}: no such cgroup v2 file (is the ${ctrl} controller enabled?)`);
      }
      write(d, k, v, `${P}.unified.${k}`);
    }
  }

}

function applyRdma(s: CgroupSetup, rdma: Record<string, { hcaHandles?: number; hcaObjects?: number }>): void {
  // rdma: {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}} -> rdma.max lines (same file on v1 and v2)
  for (const [dev, lim] of Object.entries(rdma)) {
    const t = target(s, 'rdma', `${P}.rdma.${dev}`);
    const h = lim.hcaHandles === undefined ? 'max' : lim.hcaHandles;
    const o = lim.hcaObjects === undefined ? 'max' : lim.hcaObjects;
    write(t.dir, 'rdma.max', `${dev} hca_handle=${h} hca_object=${o}`, `${P}.rdma.${dev}`);
  }

}

function applyDeviceRules(s: CgroupSetup, devRules: DeviceRule[] | undefined): void {
  const dv1 = v1Dir(s, 'devices');
  // only resources.devices decides: a node in linux.devices grants nothing
  if (dv1 && devRules?.length) {
    for (const [i, r] of (devRules ?? []).entries()) {
      if (r.access !== undefined && !/[rwm]/.test(r.access)) continue; // grants and takes nothing
      write(dv1, r.allow ? 'devices.allow' : 'devices.deny', deviceRuleLine(r), `${P}.devices[${i}]`);
    }
    for (const r of DEFAULT_DEVICE_RULES) write(dv1, 'devices.allow', deviceRuleLine(r), `${P}.devices (defaults)`);
  }
}

/**
 * Where devices are filtered by eBPF: the container's v2 cgroup when there is
 * no v1 devices controller (pure v2), with the rules to compile: the
 * config's, then runc's default allow list (linux.devices adds nothing).
 */
export function deviceFilterTarget(s: CgroupSetup, res: R | undefined): { dir: string; rules: DeviceRule[] } | undefined {
  if (v1Dir(s, 'devices')) return undefined;
  const dir = v2Dir(s);
  if (!dir) return undefined;
  return { dir, rules: [...((res?.devices as DeviceRule[] | undefined) ?? []), ...DEFAULT_DEVICE_RULES] };
}

function t2(s: CgroupSetup, v1: string, v2: string): string {
  return v1Dir(s, v1) ? v1 : v2;
}
