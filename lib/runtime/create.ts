// create: config.json -> launch plan -> stage -> a container waiting on its
// exec fifo. Owns rollback: on any failure nothing is left behind.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { TsrunError, formatError } from '../errors';
import { checkSpec, loadSpec, type Validator } from '../spec';
import type { Spec } from '../spec/types';
import { buildPlan, type HostFacts } from '../plan';
import { encodePlan, MSG_MAX } from '../protocol';
import { type CgroupSetup, planCgroups, createCgroups, cgroupPids, cgroupsToCreate, destroyCgroups, frozenBeforeStart, systemdPath, warmAttach } from '../cgroups';
import { applyResources, deviceFilterTarget } from '../cgroups/resources';
import { runHooks } from '../hooks';
import { runPoststop } from './lifecycle';
import { OCI_VERSION, ociState, procStartTime, validateId, writeAtomic, isDir, isoTime, type StoredState } from '../state';
import type { Sys } from '../sys';
import type { Context } from './context';
import { compileForState, planSeccomp, sendListener } from './seccomp';
import { lsmFor } from './lsm';
import { terminalSocket } from './tty';
import { Supervisor } from './supervisor';
import { sendPidfd } from './pidfd';
import { planNetDevices, type PlanNetDevice } from '../plan/netdev';
import { applyRdt, planRdt, removeRdt, resctrlRoot, type RdtPlan } from '../intelrdt';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** run in the foreground: a terminal's master comes back to us (masterFd) */
  terminalRelay?: boolean;
  /** run: keep the init's pidfd, to signal it without a pid that may be reused */
  keepInitPidfd?: boolean;
  /** an AF_UNIX socket that receives the init's pidfd */
  pidfdSocket?: string;
}

export interface Created {
  state: StoredState;
  sys: Sys;
  /** the pty master when the runtime relays the terminal itself; else -1 */
  masterFd: number;
  /** with keepInitPidfd: the init's pidfd (the caller's to close); else -1 */
  initPidfd: number;
}

function hostFacts(hierarchies: HostFacts['hierarchies']): HostFacts {
  let lastCap = 40;
  try {
    lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    /* keep the default */
  }
  return {
    lastCap, hasKcore: existsSync('/proc/kcore'), isDir, hierarchies, resctrlRoot: resctrlMount, inUserNS: inUserNS(),
    ids: { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }, idmapHelpers,
  };
}

function isPermission(e: unknown): boolean {
  const m = (e as { errno?: string; message?: string });
  return ['EACCES', 'EPERM', 'EROFS'].includes(m.errno ?? '') || /EACCES|EPERM|EROFS/.test(m.message ?? '');
}

/** Does linux.resources ask for any limit (an empty object or only empty sections does not)? */
function hasLimits(res: Record<string, unknown> | undefined): boolean {
  return Object.values(res ?? {}).some((v) => v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v as object).length > 0));
}

let userNS: boolean | undefined;
/** Does tsrun itself run in a user namespace (its uid_map not the initial namespace's full identity)? */
function inUserNS(): boolean {
  if (userNS === undefined) {
    try {
      userNS = !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
    } catch {
      userNS = false;
    }
  }
  return userNS;
}

/** newuidmap and newgidmap on PATH (asked only by a rootless config mapping more than its own ids) */
function idmapHelpers(): { uid: string; gid: string } | undefined {
  const find = (name: string) => (process.env.PATH ?? '/usr/bin:/bin').split(':').map((d) => join(d || '.', name)).find((p) => existsSync(p));
  const uid = find('newuidmap');
  const gid = find('newgidmap');
  return uid && gid ? { uid, gid } : undefined;
}

/** Where resctrl is mounted (asked only when a config names intelRdt). */
function resctrlMount(): string | undefined {
  try {
    return resctrlRoot(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

function loadValidator(): Validator {
  // generated at build time by lib/build/build.mjs (ajv standalone)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../_build/validators.cjs').config as Validator;
}

/** What create knows once config.json is read and checked, before anything exists. */
interface Prepared {
  bundle: string;
  rootfs: string;
  spec: Spec;
  consoleSocket: string | undefined;
  extraFds: number;
  seccomp: ReturnType<typeof compileForState> | undefined;
}

export function create(ctx: Context, o: CreateOptions): Created {
  const run = new CreateRun(ctx, o);
  const p = run.prepare();
  ctx.store.reserve(o.id);
  const unlock = ctx.store.lock(o.id);
  run.timing('state dir reserved and locked');
  try {
    return run.launch(p);
  } catch (e) {
    run.rollback();
    throw e;
  } finally {
    unlock();
  }
}

/** One create: its phases in order, and what each made undone in reverse on failure. */
class CreateRun {
  private readonly undo: (() => void)[] = [];
  private hooksFailed = false;
  private initPid = 0;
  private st: StoredState | undefined;
  private rdt: RdtPlan | undefined;
  /** --rootless true, or auto and not root (runc's reading) */
  private readonly rootless: boolean;

  constructor(private readonly ctx: Context, private readonly o: CreateOptions) {
    this.undo.push(() => ctx.store.remove(o.id));
    // runc's auto: not root, or root of a user namespace (rootless podman runs its runtime there)
    this.rootless = ctx.rootless === 'true' || (ctx.rootless === 'auto' && (process.geteuid?.() !== 0 || inUserNS()));
  }

  /** since tsrun started (the engine's start-up included); process.uptime() is a clock read */
  timing(what: string): void {
    if (this.ctx.log.debugEnabled) this.ctx.log.debug(`create: ${what} at ${(process.uptime() * 1000).toFixed(1)} ms`);
  }

  prepare(): Prepared {
    const { ctx, o } = this;
    this.timing('create started (command line parsed)');
    validateId(o.id);
    if ((o.preserveFds ?? 0) < 0) throw new TsrunError('--preserve-fds: must not be negative');
    const listen = listenFds();
    const bundle = resolve(o.bundle);
    if (!isDir(bundle)) throw new TsrunError(`bundle ${bundle}: not a directory`);
    const validator = loadValidator();
    this.timing('validator loaded');
    const spec = loadSpec(bundle, validator);
    checkSpec(spec, (m) => ctx.log.warn(m));
    const consoleSocket = terminalSocket(spec.process?.terminal, o.consoleSocket, !!o.terminalRelay);
    if (listen && spec.process) spec.process.env = [...(spec.process.env ?? []), `LISTEN_FDS=${listen}`, 'LISTEN_PID=1'];
    this.timing('config validated');
    const tc = process.uptime();
    const seccomp = spec.linux?.seccomp ? compileForState(spec.linux.seccomp, (m) => ctx.log.debug(m), join(ctx.store.root, '.tsrun-seccomp-cache')) : undefined;
    if (seccomp && ctx.log.debugEnabled) ctx.log.debug(`create: seccomp compiled in ${((process.uptime() - tc) * 1000).toFixed(2)} ms (${Buffer.from(seccomp.program, 'base64').length / 8} instructions)`);
    if (ctx.systemdCgroup) systemdPath(spec.linux?.cgroupsPath, o.id);
    const rootfs = spec.root.path.startsWith('/') ? spec.root.path : resolve(bundle, spec.root.path);
    if (!isDir(rootfs)) throw new TsrunError(`root.path: rootfs ${rootfs} does not exist or is not a directory`);
    return { bundle, rootfs, spec, consoleSocket, extraFds: listen + (o.preserveFds ?? 0), seccomp };
  }

  launch(p: Prepared): Created {
    const cg = this.cgroups(p);
    const sys = this.ctx.sys();
    this.timing(`native library loaded (${process.versions.bun ? 'bun:ffi' : 'koffi'})`);
    // cgroup v2 without a v1 devices controller: the device list as eBPF
    const df = this.rootless ? undefined : deviceFilterTarget(cg, p.spec.linux?.resources);
    if (df) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { deviceProgram } = require('../cgroups/devices-ebpf') as typeof import('../cgroups/devices-ebpf');
      sys.attachDeviceFilter(df.dir, deviceProgram(df.rules));
      this.timing('device filter attached');
    }
    const bytes = this.plan(p, cg, sys);
    const st = this.st!;
    const netdevs = planNetDevices(p.spec.linux?.netDevices, p.spec.linux?.namespaces ?? []);
    const rdt = p.spec.linux?.intelRdt ? planRdt(p.spec.linux.intelRdt as Parameters<typeof planRdt>[0], this.o.id, resctrlMount()!) : undefined;
    if (rdt?.create) st.rdtDir = rdt.dir;
    this.rdt = rdt;
    const sv = this.supervise(p, sys, bytes, netdevs);
    st.pid = this.initPid;
    st.pidStart = procStartTime(this.initPid) ?? 0;
    this.ctx.store.save(st);
    if (this.o.pidFile) writeAtomic(resolve(this.o.pidFile), String(this.initPid), 0o644);
    sendPidfd(sys, this.o.pidfdSocket, this.initPid);
    // the state rides with GO for the startContainer hooks' stdin, whole or not at all
    const go = p.spec.hooks?.startContainer?.length ? Buffer.from(this.stateFor('created')) : Buffer.alloc(0);
    if (go.length > MSG_MAX) {
      throw new TsrunError(`hooks.startContainer: the container state is ${go.length} bytes, over the ${MSG_MAX} the stage takes for the hooks' stdin (annotations too large?)`);
    }
    sv.go(go);
    const initPidfd = this.o.keepInitPidfd ? sv.takeInitPidfd() : -1;
    sv.close();
    this.timing('ready (state written, init waits for start)');
    return { state: st, sys, masterFd: sv.masterFd, initPidfd };
  }

  /**
   * The limits to write. Rootless: no device rules (runc's rootless reading):
   * a user namespace cannot create device nodes and a process there may not
   * program the device cgroup; said, not silently dropped.
   */
  private resources(p: Prepared): Record<string, unknown> | undefined {
    const res = p.spec.linux?.resources as Record<string, unknown> | undefined;
    if (!this.rootless || !res?.devices) return res;
    this.ctx.log.warn('rootless: linux.resources.devices is not enforced by a cgroup (no device node can be made in the user namespace; bound ones keep their host permissions)');
    const { devices: _, ...rest } = res;
    return rest;
  }

  /** The container's cgroups made and limited before any of its processes exists. */
  private cgroups(p: Prepared): CgroupSetup {
    const { ctx, o } = this;
    const cg = planCgroups(p.spec.linux?.cgroupsPath, o.id);
    const res = this.resources(p);
    // written down before it exists: a kill -9 from here on leaves a state
    // that `delete --force` cleans up (what is not there yet is skipped)
    ctx.store.save({
      ociVersion: OCI_VERSION, id: o.id, pid: 0, pidStart: 0, bundle: p.bundle, rootfs: p.rootfs, created: isoTime(),
      owner: ownerName(), cgroupPaths: cg.paths, cgroupCreated: cgroupsToCreate(cg), creating: true,
    });
    this.undo.push(() => {
      destroyCgroups(cg.created);
    });
    try {
      createCgroups(cg);
    } catch (e) {
      // rootless (runc's rule): cgroups the user may not write are done without, unless limits were asked for
      if (!this.rootless || !isPermission(e)) throw e;
      if (hasLimits(res)) throw new TsrunError(`rootless: linux.resources needs a cgroup this user can write (${formatError(e)})`);
      ctx.log.debug(`rootless: running without cgroups (${formatError(e)})`);
      destroyCgroups(cg.created);
      return { ...cg, paths: [], created: [], procs: [], freezer: undefined };
    }
    this.timing(`cgroups created (${cg.created.length} directories)`);
    // runc's refusal: the init would block in the frozen cgroup and never report
    if (frozenBeforeStart(cg)) throw new TsrunError(`container's cgroup unexpectedly frozen (${cg.freezer})`);
    // a cgroup that was there before may hold someone else's processes (runc's warning)
    const existed = cg.paths.filter((d) => !cg.created.includes(d));
    if (existed.length) {
      const n = new Set(existed.flatMap((d) => cgroupPids([d]))).size;
      if (n) ctx.log.warn(`container's cgroup is not empty: ${n} process(es) found`);
    }
    // limits are in place before the init joins: nothing runs unlimited
    applyResources(cg, res);
    this.timing('cgroup limits written');
    // after the cgroup writes: the attach holds cgroup_mutex through its grace period
    warmAttach(cg);
    return cg;
  }

  /** The exec fifo, the launch plan's bytes, and the state that names them. */
  private plan(p: Prepared, cg: CgroupSetup, sys: Sys): Buffer {
    const { ctx, o } = this;
    const { spec } = p;
    const fifo = ctx.store.fifo(o.id);
    sys.mkfifo(fifo, 0o622);
    chmodSync(fifo, 0o622);
    const plan = buildPlan(spec, {
      id: o.id, bundle: p.bundle, fifo, noPivot: !!o.noPivot, noNewKeyring: !!o.noNewKeyring,
      preserveFds: p.extraFds, cgroupProcs: cg.procs, cgroupPaths: cg.paths,
      debug: ctx.log.debugEnabled, warn: (m) => ctx.log.warn(m), consoleSocket: p.consoleSocket, seccomp: planSeccomp(p.seccomp),
      rootless: this.rootless,
    }, { ...hostFacts(cg.hierarchies), lsm: lsmFor(spec.process) });
    const bytes = encodePlan(plan);
    this.timing(`plan built (${bytes.length} bytes)`);
    this.st = {
      ociVersion: OCI_VERSION, id: o.id, pid: 0, pidStart: 0, bundle: p.bundle, rootfs: p.rootfs, created: isoTime(),
      owner: ownerName(), annotations: spec.annotations, cgroupPaths: cg.paths, cgroupCreated: cg.created,
      freezer: cg.freezer, hooks: { poststart: spec.hooks?.poststart, poststop: spec.hooks?.poststop, ...(spec.hooks?.startContainer?.length ? { startContainer: true } : {}) },
      process: spec.process, seccomp: p.seccomp, resources: spec.linux?.resources as Record<string, unknown> | undefined,
    };
    // a tsrun killed from here on leaves a container `delete` cleans up (no live init: stopped)
    ctx.store.save({ ...this.st, creating: true });
    this.timing('state written (creating)');
    return bytes;
  }

  private stateFor(status: 'creating' | 'created'): string {
    return JSON.stringify(ociState(this.ctx.store, { ...this.st!, pid: this.initPid }, status));
  }

  /** The stage spawned and driven until its init is READY. */
  private supervise(p: Prepared, sys: Sys, bytes: Buffer, netdevs: PlanNetDevice[]): Supervisor {
    const { ctx } = this;
    const { spec, seccomp } = p;
    const sv: Supervisor = new Supervisor(sys, sys.spawn(bytes, p.extraFds), {
      prefix: '',
      debug: (m) => ctx.log.debug(`stage: ${m} (received at ${(process.uptime() * 1000).toFixed(1)} ms)`),
      warn: (m) => ctx.log.warn(m),
      seccomp: seccomp?.notify ? (fd) => sendListener(sys, seccomp, fd, sv.pid, ociState(ctx.store, { ...this.st!, pid: sv.pid }, 'creating')) : undefined,
      pid: (pid) => {
        this.initPid = pid;
        if (this.rdt) {
          const made = this.rdt.create ? this.rdt.dir : undefined;
          this.undo.push(() => removeRdt(made));
          applyRdt(this.rdt, pid);
        }
        // the namespace exists now; a failure kills the init, and its end frees them
        for (const d of netdevs) sys.netdevMove(d.host, d.name, `/proc/${pid}/ns/net`);
        ctx.store.save({ ...this.st!, creating: true, pid, pidStart: procStartTime(pid) ?? 0 });
        this.timing(`init is pid ${pid}`);
      },
      hooks: () => {
        // after step 2 of the lifecycle: "created" by the spec's definitions (crun too; runc says creating)
        const s = this.stateFor('created');
        this.hooksFailed = true;
        runHooks('prestart', spec.hooks?.prestart, s, { stageExe: sys.stageExe });
        runHooks('createRuntime', spec.hooks?.createRuntime, s, { stageExe: sys.stageExe });
        runHooks('createContainer', spec.hooks?.createContainer, s, { nsPid: this.initPid, nsCwd: p.rootfs, stageExe: sys.stageExe });
        this.hooksFailed = false;
        this.timing('create hooks done');
      },
    });
    this.undo.push(() => sv.abort());
    this.timing('stage spawned');
    sv.untilReady();
    return sv;
  }

  rollback(): void {
    for (const u of this.undo.reverse()) {
      try {
        u();
      } catch (ue) {
        this.ctx.log.warn(`cleanup after failed create: ${(ue as Error).message}`);
      }
    }
    // a failed prestart/createRuntime/createContainer hook: destroyed (step 12), then poststop (13)
    if (this.hooksFailed && this.st) runPoststop(this.ctx, { ...this.st, pid: this.initPid });
  }
}

/**
 * systemd socket activation, as runc: when LISTEN_PID is us, the LISTEN_FDS
 * sockets at fds 3.. go to the container first (before --preserve-fds), which
 * sees LISTEN_FDS=N and LISTEN_PID=1.
 */
function listenFds(): number {
  const n = process.env.LISTEN_FDS;
  if (!n || process.env.LISTEN_PID !== String(process.pid)) return 0;
  if (!/^\d+$/.test(n)) throw new TsrunError(`LISTEN_FDS: not a count: ${JSON.stringify(n)}`);
  return Number(n);
}

function ownerName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}
