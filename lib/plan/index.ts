// (Spec, options, host facts) -> LaunchPlan: a flat, fully resolved list of
// what the native stage must do. Pure: host facts come in as arguments.
import { isAbsolute, resolve } from 'node:path';
import { TsrunError } from '../errors';
import type { Hook, Process, Spec } from '../spec/types';
import { CAPS, NAMESPACES, RLIMITS } from '../spec/tables';
import type { Hierarchy } from '../cgroups';
import { rootPropagation } from './mounts';
import { cleanDest, idMap, planDevices, planMounts } from './rootfs';
import { planMemoryPolicy, type PlanMemoryPolicy } from './mempolicy';

export interface PlanMount {
  flags: number;
  pflags: number;
  attrSet: number;
  attrClr: number;
  extra: number;
  source: string;
  destination: string;
  type: string;
  data: string;
  /** an idmapped bind: the maps of a fresh user namespace, or an existing one by path */
  idmap?: { recursive: boolean; uidMap: string; gidMap: string; usernsPath: string };
}

export interface PlanDevice {
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  path: string;
}

export interface LaunchPlan {
  rootfs: string;
  rootReadonly: boolean;
  rootPropagation: number;
  noPivot: boolean;
  nsNew: number;
  nsJoin: { flag: number; path: string }[];
  uidMap?: string;
  gidMap?: string;
  /** rootless: setgroups is denied before gid_map (the kernel's rule for an unprivileged writer) */
  setgroupsDeny?: boolean;
  /** rootless with maps beyond the user's own ids: written by newuidmap/newgidmap (/etc/subuid, /etc/subgid) */
  idmapHelpers?: { uid: string; gid: string };
  timensOffsets?: string;
  cgroupProcs: string[];
  oomScoreAdj?: number;
  hostname?: string;
  domainname?: string;
  sysctl: [string, string][];
  mounts: PlanMount[];
  devSetup: boolean;
  usernsDevices: boolean;
  devices: PlanDevice[];
  symlinks: [string, string][];
  masked: string[];
  readonly: string[];
  rlimits: { res: number; soft: bigint; hard: bigint }[];
  uid: number;
  gid: number;
  umask: number;
  groups: number[];
  caps?: [bigint, bigint, bigint, bigint, bigint];
  noNewPrivs: boolean;
  cwd: string;
  args: string[];
  env: string[];
  fifo?: string;
  syncHooks: boolean;
  startHooks: Hook[];
  keyring?: string;
  preserveFds: number;
  debug: boolean;
  /** a pty for the process: master to the console socket, or to the runtime when socket is "" */
  terminal?: PlanTerminal;
  seccomp?: PlanSeccomp;
  /** personality(2) persona before execve */
  personality?: number;
  /** ioprio_set value ((class << 13) | level) */
  ioPriority?: number;
  scheduler?: { policy: number; nice: number; priority: number; flags: bigint; runtime: bigint; deadline: bigint; period: bigint };
  /** sched_setaffinity masks: when the process starts, and just before execve */
  affinityInitial?: Buffer;
  affinityFinal?: Buffer;
  /** an LSM label for execve: /proc/self/attr/<file>/exec (or attr/exec) gets value */
  lsmExec?: { file: string; value: string };
  /** linux.memoryPolicy for set_mempolicy before execve */
  memoryPolicy?: PlanMemoryPolicy;
}

export interface HostFacts {
  /** /proc/sys/kernel/cap_last_cap */
  lastCap: number;
  /** the host has /proc/kcore (then /dev/core is linked to it) */
  hasKcore: boolean;
  /** bind sources: is this host path a directory? (false: a file) */
  isDir(path: string): boolean;
  /** cgroup hierarchies, for the cgroup mount type */
  hierarchies: Hierarchy[];
  /** LSMs that can label processes */
  lsm?: LsmState;
  /** the runtime itself runs in a user namespace (rootless podman, nested containers) */
  inUserNS?: boolean;
  /** the runtime's own uid and gid (rootless maps) */
  ids?: { uid: number; gid: number };
  /** newuidmap/newgidmap, found on PATH when first asked */
  idmapHelpers?: () => { uid: string; gid: string } | undefined;
  /** where resctrl is mounted (Intel RDT), if it is */
  resctrlRoot?: () => string | undefined;
}

/**
 * How a rootless runtime gets the new user namespace's maps written: by
 * itself when they map only its own uid and gid (setgroups denied first, the
 * kernel's rule), else through the setuid newuidmap/newgidmap, which check
 * /etc/subuid and /etc/subgid (runc's way).
 */
function rootlessMaps(rootless: boolean, linux: NonNullable<Spec['linux']>, facts: HostFacts): Pick<LaunchPlan, 'setgroupsDeny' | 'idmapHelpers'> {
  if (!rootless) return {};
  const own = (maps: { containerID: number; hostID: number; size: number }[] | undefined, id: number | undefined) =>
    !maps?.length || (maps.length === 1 && maps[0]!.size === 1 && maps[0]!.hostID === id);
  if (own(linux.uidMappings, facts.ids?.uid) && own(linux.gidMappings, facts.ids?.gid)) return { setgroupsDeny: true };
  const helpers = facts.idmapHelpers?.();
  if (!helpers) throw new TsrunError('config.json: linux.uidMappings: maps beyond your own uid and gid need newuidmap and newgidmap (Debian: uidmap) on PATH');
  return { idmapHelpers: helpers };
}

/**
 * Spec fields this build cannot honour here: each an error that says why,
 * never a field passed by the schema and then ignored.
 */
function refuseUnsupported(linux: NonNullable<Spec['linux']>, facts: HostFacts): void {
  const P = 'config.json: linux';
  // runtime-spec: no mounted resctrl is an error (MUST); with one, create joins the CLOS (lib/intelrdt)
  if (linux.intelRdt && !facts.resctrlRoot?.()) throw new TsrunError(`${P}.intelRdt: no resctrl filesystem is mounted on this host`);
  if (linux.mountLabel) {
    throw new TsrunError(facts.lsm?.selinux
      ? `${P}.mountLabel: SELinux mount labels are not implemented in tsrun`
      : `${P}.mountLabel: SELinux is not enabled on this host (asked for ${JSON.stringify(linux.mountLabel)})`);
  }
}

/** A compiled filter (lib/seccomp) and when the stage loads it. */
export interface PlanSeccomp {
  program: Buffer;
  flags: number;
  /** the filter has a listener: its fd goes to the runtime (M_SECCOMP) before READY */
  notify: boolean;
}

export interface PlanTerminal {
  socket: string;
  /** bind the pty onto /dev/console (the container's init, not exec) */
  console: boolean;
  rows: number;
  cols: number;
}

/** process.terminal -> the plan's pty: where the master goes and the initial size. */
export function planTerminal(p: Process, socket: string, console: boolean): PlanTerminal | undefined {
  if (!p.terminal) return undefined;
  return { socket, console, rows: p.consoleSize?.height ?? 0, cols: p.consoleSize?.width ?? 0 };
}

export interface PlanOptions {
  /** the runtime is unprivileged (rootless) */
  rootless?: boolean;
  id: string;
  bundle: string;
  fifo?: string;
  noPivot: boolean;
  noNewKeyring: boolean;
  preserveFds: number;
  cgroupProcs: string[];
  /** container cgroup dirs per hierarchy (same order as hierarchies) */
  cgroupPaths: string[];
  debug?: boolean;
  /** console socket path, "" to send the master to tsrun; unset: no terminal */
  consoleSocket?: string;
  seccomp?: PlanSeccomp;
  warn(msg: string): void;
}

export { TM } from './rootfs';

const U64_MAX = (1n << 64n) - 1n;
function u64(n: number): bigint {
  if (n >= 2 ** 64) return U64_MAX; // JSON's 18446744073709551615 arrives rounded up
  return BigInt(Math.trunc(n));
}

function capMask(names: string[] | undefined, lastCap: number, set: string, warn: (m: string) => void): bigint {
  let m = 0n;
  for (const n of names ?? []) {
    const i = CAPS.indexOf(n);
    if (i < 0) continue; // warned by checkSpec
    if (i > lastCap) {
      warn(`process.capabilities.${set}: ${n} is not supported by this kernel, ignored`);
      continue;
    }
    m |= 1n << BigInt(i);
  }
  return m;
}

type ProcessPart = Pick<LaunchPlan, 'rlimits' | 'uid' | 'gid' | 'umask' | 'groups' | 'caps' | 'noNewPrivs' | 'cwd' | 'args' | 'env'
  | 'ioPriority' | 'scheduler' | 'affinityInitial' | 'affinityFinal' | 'lsmExec'>;

const IOPRIO_CLASS: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };
const SCHED_POLICY: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};
const SCHED_FLAG: Record<string, bigint> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01n, SCHED_FLAG_RECLAIM: 0x02n, SCHED_FLAG_DL_OVERRUN: 0x04n, SCHED_FLAG_KEEP_POLICY: 0x08n,
  SCHED_FLAG_KEEP_PARAMS: 0x10n, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20n, SCHED_FLAG_UTIL_CLAMP_MAX: 0x40n,
};

/** "0-3,7" -> a cpu_set_t style bit mask (little endian bytes). */
export function cpuMask(list: string, where: string): Buffer {
  const cpus: number[] = [];
  for (const part of list.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new TsrunError(`${where}: invalid CPU list ${JSON.stringify(list)}`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || b >= 8192) throw new TsrunError(`${where}: invalid CPU range ${JSON.stringify(part)}`);
    for (let c = a; c <= b; c++) cpus.push(c);
  }
  if (!cpus.length) throw new TsrunError(`${where}: empty CPU list`);
  const buf = Buffer.alloc(Math.ceil((Math.max(...cpus) + 1) / 64) * 8);
  for (const c of cpus) buf[c >> 3] = buf[c >> 3]! | (1 << (c & 7));
  return buf;
}

function lsmExec(p: Process, lsm: LsmState): { file: string; value: string } | undefined {
  if (p.apparmorProfile) {
    if (!lsm.apparmor) throw new TsrunError(`config.json: process.apparmorProfile: AppArmor is not enabled on this host (asked for ${JSON.stringify(p.apparmorProfile)})`);
    return { file: 'apparmor', value: `exec ${p.apparmorProfile}` };
  }
  if (p.selinuxLabel) {
    if (!lsm.selinux) throw new TsrunError(`config.json: process.selinuxLabel: SELinux is not enabled on this host (asked for ${JSON.stringify(p.selinuxLabel)})`);
    return { file: 'selinux', value: p.selinuxLabel };
  }
  return undefined;
}

/** Which LSMs can label a process here (from /sys/kernel/security/lsm). */
export interface LsmState { apparmor: boolean; selinux: boolean }

/** The process of a config (create) or of a process.json (exec). */
export function processPart(p: Process, lastCap: number, warn: (m: string) => void, lsm: LsmState = { apparmor: false, selinux: false }): ProcessPart {
  const c = p.capabilities;
  const caps: LaunchPlan['caps'] = c
    ? [
        capMask(c.bounding, lastCap, 'bounding', warn), capMask(c.effective, lastCap, 'effective', warn),
        capMask(c.permitted, lastCap, 'permitted', warn), capMask(c.inheritable, lastCap, 'inheritable', warn),
        capMask(c.ambient, lastCap, 'ambient', warn),
      ]
    : [0n, 0n, 0n, 0n, 0n];
  return {
    rlimits: (p.rlimits ?? []).map((r) => ({ res: RLIMITS[r.type]!, soft: u64(r.soft), hard: u64(r.hard) })),
    uid: p.user?.uid ?? 0,
    gid: p.user?.gid ?? 0,
    umask: p.user?.umask ?? -1,
    groups: p.user?.additionalGids ?? [],
    caps,
    noNewPrivs: !!p.noNewPrivileges,
    cwd: p.cwd,
    args: p.args!,
    env: p.env ?? [],
    ioPriority: p.ioPriority ? (IOPRIO_CLASS[p.ioPriority.class]! << 13) | (p.ioPriority.priority ?? 0) : undefined,
    scheduler: p.scheduler
      ? {
          policy: SCHED_POLICY[p.scheduler.policy]!, nice: p.scheduler.nice ?? 0, priority: p.scheduler.priority ?? 0,
          flags: (p.scheduler.flags ?? []).reduce((a, f) => a | SCHED_FLAG[f]!, 0n),
          runtime: u64(p.scheduler.runtime ?? 0), deadline: u64(p.scheduler.deadline ?? 0), period: u64(p.scheduler.period ?? 0),
        }
      : undefined,
    affinityInitial: p.execCPUAffinity?.initial ? cpuMask(p.execCPUAffinity.initial, 'process.execCPUAffinity.initial') : undefined,
    affinityFinal: p.execCPUAffinity?.final ? cpuMask(p.execCPUAffinity.final, 'process.execCPUAffinity.final') : undefined,
    lsmExec: lsmExec(p, lsm),
  };
}

/**
 * exec: a process that joins every namespace of a running container (user
 * first, in the stage) and its cgroup; no mounts, no new namespaces. ROOT:
 * a chroot for a container without a mount namespace of its own.
 */
export function buildExecPlan(
  p: Process, nsJoin: { flag: number; path: string }[], cgroupProcs: string[], lastCap: number,
  preserveFds: number, debug: boolean, warn: (m: string) => void, consoleSocket?: string, seccomp?: PlanSeccomp,
  lsm?: LsmState, root = '/',
): LaunchPlan {
  return {
    rootfs: root, rootReadonly: false, rootPropagation: 0, noPivot: false, nsNew: 0, nsJoin, cgroupProcs,
    sysctl: [], mounts: [], devSetup: false, usernsDevices: false, devices: [], symlinks: [], masked: [], readonly: [],
    ...processPart(p, lastCap, warn, lsm),
    syncHooks: false, startHooks: [], preserveFds, debug,
    terminal: consoleSocket !== undefined ? planTerminal(p, consoleSocket, false) : undefined,
    seccomp,
  };
}

/** linux.namespaces: the ones to create (clone flags) and the ones to join by path. */
function planNamespaces(nss: { type: string; path?: string }[]) {
  let nsNew = 0;
  const nsJoin: { flag: number; path: string }[] = [];
  for (const ns of nss) {
    const t = NAMESPACES[ns.type]!;
    if (ns.path) nsJoin.push({ flag: t.flag, path: ns.path });
    else nsNew |= t.flag;
  }
  const newUser = (nsNew & NAMESPACES.user!.flag) !== 0;
  const inUserns = newUser || nsJoin.some((j) => j.flag === NAMESPACES.user!.flag);
  return { nsNew, nsJoin, newUser, inUserns, cgroupNs: nss.some((n) => n.type === 'cgroup') };
}

export function buildPlan(spec: Spec, opts: PlanOptions, facts: HostFacts): LaunchPlan {
  const p = spec.process!;
  const linux = spec.linux ?? {};
  refuseUnsupported(linux, facts);
  const { nsNew, nsJoin, newUser, inUserns, cgroupNs } = planNamespaces(linux.namespaces ?? []);

  const rootfs = isAbsolute(spec.root.path) ? spec.root.path : resolve(opts.bundle, spec.root.path);

  const { mounts, devSetup } = planMounts(spec, opts, facts, { nsJoin, newUser, cgroupNs });
  const { devices, symlinks } = planDevices(linux.devices, devSetup, facts.hasKcore);

  const proc = processPart(p, facts.lastCap, opts.warn, facts.lsm);
  // config.md: execCPUAffinity "is not applicable to the container's init
  // process": it is for what exec starts (exec reads it from this config too)
  if (p.execCPUAffinity?.initial || p.execCPUAffinity?.final) {
    opts.warn('process.execCPUAffinity applies to processes started by exec, not to the container\'s init (runtime-spec): the init keeps the runtime\'s affinity');
  }
  delete proc.affinityInitial;
  delete proc.affinityFinal;
  if (linux.personality?.flags?.length) opts.warn(`linux.personality.flags ${JSON.stringify(linux.personality.flags)} ignored: the spec defines none`);

  let timensOffsets: string | undefined;
  if (linux.timeOffsets) {
    timensOffsets = Object.entries(linux.timeOffsets)
      .map(([k, v]) => `${k} ${v?.secs ?? 0} ${v?.nanosecs ?? 0}\n`).join('');
  }

  const sysctl = Object.entries(linux.sysctl ?? {}).map(([k, v]) => [k.replace(/\./g, '/'), v] as [string, string]);
  const hooks = spec.hooks ?? {};

  return {
    rootfs,
    rootReadonly: !!spec.root.readonly,
    rootPropagation: rootPropagation(linux.rootfsPropagation),
    noPivot: opts.noPivot,
    nsNew,
    nsJoin,
    uidMap: newUser ? idMap(linux.uidMappings) : undefined,
    gidMap: newUser ? idMap(linux.gidMappings) : undefined,
    ...rootlessMaps(newUser && !!opts.rootless, linux, facts),
    timensOffsets,
    cgroupProcs: opts.cgroupProcs,
    oomScoreAdj: p.oomScoreAdj,
    hostname: spec.hostname,
    domainname: spec.domainname,
    sysctl,
    mounts,
    devSetup,
    // mknod is refused in any user namespace but the initial one: the container's, or the runtime's own
    usernsDevices: inUserns || !!facts.inUserNS,
    devices,
    symlinks,
    masked: (linux.maskedPaths ?? []).map(cleanDest),
    readonly: (linux.readonlyPaths ?? []).map(cleanDest),
    ...proc,
    fifo: opts.fifo,
    syncHooks: !!(hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length),
    startHooks: hooks.startContainer ?? [],
    keyring: opts.noNewKeyring ? undefined : `_ses.${opts.id}`,
    preserveFds: opts.preserveFds,
    debug: !!opts.debug,
    terminal: opts.consoleSocket !== undefined ? planTerminal(p, opts.consoleSocket, true) : undefined,
    seccomp: opts.seccomp,
    personality: linux.personality ? (linux.personality.domain === 'LINUX32' ? 0x0008 : 0x0000) : undefined,
    memoryPolicy: planMemoryPolicy(linux.memoryPolicy as Parameters<typeof planMemoryPolicy>[0]),
  };
}

