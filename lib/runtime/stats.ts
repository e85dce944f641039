// A container's stats in runc's `events --stats` JSON shape (types/events.go):
// cpu, cpuset, memory (with kernel and kernelTCP where v1 has them), pids,
// blkio, hugetlb, intel_rdt and network_interfaces, read from its cgroups
// (v1 or v2, one mapping: controllerDir) and its network namespace.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controllerDir, type Hierarchy } from '../cgroups';
import type { StoredState } from '../state';

function rd(dir: string | undefined, f: string): string | undefined {
  if (!dir) return undefined;
  try {
    return readFileSync(join(dir, f), 'utf8').trim();
  } catch {
    return undefined;
  }
}
const n = (s: string | undefined) => (s === undefined || s === 'max' ? 0 : Number(s));

export function kv(text: string | undefined): Record<string, number> {
  const o: Record<string, number> = {};
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.split(/\s+/);
    if (k && v !== undefined) o[k] = Number(v);
  }
  return o;
}

const nums = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean).map(Number);
type Dir = { dir: string; v2: boolean } | undefined;

function cpuStats(cpu: Dir, cpuStat: Record<string, number>) {
  const tick = 1e7; // USER_HZ 100 -> ns
  const acct = kv(rd(cpu?.dir, 'cpuacct.stat'));
  const usage = cpu?.v2
    ? { total: (cpuStat.usage_usec ?? 0) * 1000, percpu: [] as number[], percpu_kernel: [] as number[], percpu_user: [] as number[], kernel: (cpuStat.system_usec ?? 0) * 1000, user: (cpuStat.user_usec ?? 0) * 1000 }
    : {
        total: n(rd(cpu?.dir, 'cpuacct.usage')),
        percpu: nums(rd(cpu?.dir, 'cpuacct.usage_percpu')),
        percpu_kernel: nums(rd(cpu?.dir, 'cpuacct.usage_percpu_sys')),
        percpu_user: nums(rd(cpu?.dir, 'cpuacct.usage_percpu_user')),
        kernel: (acct.system ?? 0) * tick,
        user: (acct.user ?? 0) * tick,
      };
  const throttling = { periods: cpuStat.nr_periods ?? 0, throttledPeriods: cpuStat.nr_throttled ?? 0, throttledTime: cpuStat.throttled_time ?? (cpuStat.throttled_usec ?? 0) * 1000 };
  return { usage, throttling };
}

function memEntry(m: string | undefined, limit: string, usage: string, max: string, failcnt: string) {
  return { limit: n(rd(m, limit)), usage: n(rd(m, usage)), max: n(rd(m, max)), failcnt: n(rd(m, failcnt)) };
}

function memoryStats(mem: Dir) {
  const m = mem?.dir;
  const raw = kv(rd(m, 'memory.stat'));
  if (mem?.v2) {
    return {
      cache: raw.file ?? 0,
      usage: { limit: n(rd(m, 'memory.max')), usage: n(rd(m, 'memory.current')), max: n(rd(m, 'memory.peak')), failcnt: kv(rd(m, 'memory.events')).max ?? 0 },
      swap: { limit: n(rd(m, 'memory.swap.max')), usage: n(rd(m, 'memory.swap.current')), max: n(rd(m, 'memory.swap.peak')), failcnt: kv(rd(m, 'memory.swap.events')).max ?? 0 },
      raw,
    };
  }
  return {
    cache: raw.total_cache ?? raw.cache ?? 0,
    usage: memEntry(m, 'memory.limit_in_bytes', 'memory.usage_in_bytes', 'memory.max_usage_in_bytes', 'memory.failcnt'),
    swap: memEntry(m, 'memory.memsw.limit_in_bytes', 'memory.memsw.usage_in_bytes', 'memory.memsw.max_usage_in_bytes', 'memory.memsw.failcnt'),
    kernel: memEntry(m, 'memory.kmem.limit_in_bytes', 'memory.kmem.usage_in_bytes', 'memory.kmem.max_usage_in_bytes', 'memory.kmem.failcnt'),
    kernelTCP: memEntry(m, 'memory.kmem.tcp.limit_in_bytes', 'memory.kmem.tcp.usage_in_bytes', 'memory.kmem.tcp.max_usage_in_bytes', 'memory.kmem.tcp.failcnt'),
    raw,
  };
}

/** "0-2,5" -> [0, 1, 2, 5] */
export function cpuList(s: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (s ?? '').split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.push(i);
  }
  return out;
}

/** v1 blkio.throttle.* lines "8:0 Read 123" / v2 io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4" */
export function blkioStats(io: Dir): Record<string, { major: number; minor: number; op: string; value: number }[]> {
  const entries = (text: string | undefined) => (text ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => /^\d+:\d+$/.test(f[0] ?? ''));
  const dev = (d: string) => d.split(':').map(Number) as [number, number];
  if (io?.v2) {
    const bytes = [], ios = [];
    for (const f of entries(rd(io.dir, 'io.stat'))) {
      const [major, minor] = dev(f[0]!);
      const v = Object.fromEntries(f.slice(1).map((x) => x.split('=')).map(([k, x]) => [k, Number(x)]));
      bytes.push({ major, minor, op: 'Read', value: v.rbytes ?? 0 }, { major, minor, op: 'Write', value: v.wbytes ?? 0 });
      ios.push({ major, minor, op: 'Read', value: v.rios ?? 0 }, { major, minor, op: 'Write', value: v.wios ?? 0 });
    }
    return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
  }
  const v1 = (f: string) => entries(rd(io?.dir, f)).filter((x) => x.length === 3).map((x) => {
    const [major, minor] = dev(x[0]!);
    return { major, minor, op: x[1]!, value: Number(x[2]) };
  });
  return { ioServiceBytesRecursive: v1('blkio.throttle.io_service_bytes_recursive'), ioServicedRecursive: v1('blkio.throttle.io_serviced_recursive') };
}

function hugetlbStats(h: Dir): Record<string, { usage: number; max: number; failcnt: number }> {
  const out: Record<string, { usage: number; max: number; failcnt: number }> = {};
  if (!h) return out;
  let files: string[] = [];
  try {
    files = readdirSync(h.dir);
  } catch {
    return out;
  }
  for (const f of files) {
    const m = h.v2 ? /^hugetlb\.(\w+)\.current$/.exec(f) : /^hugetlb\.(\w+)\.usage_in_bytes$/.exec(f);
    if (!m) continue;
    const size = m[1]!;
    out[size] = h.v2
      ? { usage: n(rd(h.dir, f)), max: 0, failcnt: kv(rd(h.dir, `hugetlb.${size}.events`)).max ?? 0 }
      : { usage: n(rd(h.dir, f)), max: n(rd(h.dir, `hugetlb.${size}.max_usage_in_bytes`)), failcnt: n(rd(h.dir, `hugetlb.${size}.failcnt`)) };
  }
  return out;
}

/** The container's interfaces but lo, from its network namespace (/proc/<init>/net/dev), in runc's field names. */
export function networkInterfaces(netDev: string | undefined): Record<string, string | number>[] {
  const out: Record<string, string | number>[] = [];
  for (const line of (netDev ?? '').split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    if (name === 'lo' || f.length < 12) continue;
    out.push({ Name: name, RxBytes: f[0]!, RxPackets: f[1]!, RxErrors: f[2]!, RxDropped: f[3]!, TxBytes: f[8]!, TxPackets: f[9]!, TxErrors: f[10]!, TxDropped: f[11]! });
  }
  return out;
}

export function stats(st: StoredState, hier: Hierarchy[]): Record<string, unknown> {
  const dirFor = (ctrl: string) => controllerDir(st.cgroupPaths, ctrl, hier);
  const pids = dirFor('pids');
  const cs = dirFor('cpuset');
  let netDev: string | undefined;
  try {
    netDev = readFileSync(`/proc/${st.pid}/net/dev`, 'utf8');
  } catch {
    /* gone */
  }
  return {
    cpu: cpuStats(dirFor('cpuacct') ?? dirFor('cpu'), kv(rd(dirFor('cpu')?.dir, 'cpu.stat'))),
    cpuset: { cpus: cpuList(rd(cs?.dir, cs?.v2 ? 'cpuset.cpus.effective' : 'cpuset.effective_cpus')), mems: cpuList(rd(cs?.dir, cs?.v2 ? 'cpuset.mems.effective' : 'cpuset.effective_mems')) },
    memory: memoryStats(dirFor('memory')),
    pids: { current: n(rd(pids?.dir, 'pids.current')), limit: n(rd(pids?.dir, 'pids.max')) },
    blkio: blkioStats(dirFor('blkio') ?? dirFor('io')),
    hugetlb: hugetlbStats(dirFor('hugetlb')),
    intel_rdt: {},
    network_interfaces: networkInterfaces(netDev),
  };
}
