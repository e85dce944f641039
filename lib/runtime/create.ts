// create: config.json -> launch plan -> stage -> a container waiting on its
// exec fifo. Owns rollback: on any failure nothing is left behind.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { TsrunError, errnoName } from '../errors';
import { checkSpec, loadSpec, type Validator } from '../spec';
import { buildPlan, type HostFacts } from '../plan';
import { encodePlan, decodeFrame, encodeFrame, M, MSG_HDR, MSG_MAX } from '../protocol';
import { planCgroups, createCgroups, cgroupPids, cgroupsToCreate, destroyCgroups, frozenBeforeStart, systemdPath, warmAttach } from '../cgroups';
import { applyResources, deviceFilterTarget } from '../cgroups/resources';
import { runHooks } from '../hooks';
import { runPoststop } from './lifecycle';
import { OCI_VERSION, ociState, procStartTime, validateId, writeAtomic, isDir, isoTime, type StoredState } from '../state';
import type { Sys } from '../sys';
import type { Context } from './context';
import { compileForState, planSeccomp, sendListener } from './seccomp';
import { lsmFor } from './lsm';
import { terminalSocket } from './tty';
import { STAGE_SILENCE_MS, stuckMessage } from './silence';

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
}

export interface Created {
  state: StoredState;
  sys: Sys;
  /** the pty master when the runtime relays the terminal itself; else -1 */
  masterFd: number;
}

function hostFacts(hierarchies: HostFacts['hierarchies']): HostFacts {
  let lastCap = 40;
  try {
    lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    /* keep the default */
  }
  return { lastCap, hasKcore: existsSync('/proc/kcore'), isDir, hierarchies };
}

function loadValidator(): Validator {
  // generated at build time by lib/build/build.mjs (ajv standalone)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../_build/validators.cjs').config as Validator;
}

export function create(ctx: Context, o: CreateOptions): Created {
  // since tsrun started (Node's own start-up included); process.uptime()
  // is a clock read, where the performance global loads perf_hooks (~2 ms)
  const timing = (what: string) => {
    if (ctx.log.debugEnabled) ctx.log.debug(`create: ${what} at ${(process.uptime() * 1000).toFixed(1)} ms`);
  };
  timing('create started (command line parsed)');
  validateId(o.id);
  if ((o.preserveFds ?? 0) < 0) throw new TsrunError('--preserve-fds: must not be negative');
  const listen = listenFds();
  const bundle = resolve(o.bundle);
  if (!isDir(bundle)) throw new TsrunError(`bundle ${bundle}: not a directory`);
  const validator = loadValidator();
  timing('validator loaded');
  const spec = loadSpec(bundle, validator);
  checkSpec(spec, (m) => ctx.log.warn(m));
  const consoleSocket = terminalSocket(spec.process?.terminal, o.consoleSocket, !!o.terminalRelay);
  if (listen && spec.process) spec.process.env = [...(spec.process.env ?? []), `LISTEN_FDS=${listen}`, 'LISTEN_PID=1'];
  const extraFds = listen + (o.preserveFds ?? 0);
  timing('config validated');
  const tc = process.uptime();
  const seccomp = spec.linux?.seccomp ? compileForState(spec.linux.seccomp, (m) => ctx.log.debug(m), join(ctx.store.root, '.tsrun-seccomp-cache')) : undefined;
  if (seccomp && ctx.log.debugEnabled) ctx.log.debug(`create: seccomp compiled in ${((process.uptime() - tc) * 1000).toFixed(2)} ms (${Buffer.from(seccomp.program, 'base64').length / 8} instructions)`);
  if (ctx.systemdCgroup) systemdPath(spec.linux?.cgroupsPath, o.id);
  const rootfs = spec.root.path.startsWith('/') ? spec.root.path : resolve(bundle, spec.root.path);
  if (!isDir(rootfs)) throw new TsrunError(`root.path: rootfs ${rootfs} does not exist or is not a directory`);

  const store = ctx.store;
  store.reserve(o.id);
  const unlock = store.lock(o.id);
  timing('state dir reserved and locked');
  const undo: (() => void)[] = [() => store.remove(o.id)];
  let sys: Sys | undefined;
  let initPidfd = -1;
  let initPid = 0;
  let sock = -1;
  let masterFd = -1;
  let hooksFailed = false;
  let st: StoredState | undefined;
  try {
    const cg = planCgroups(spec.linux?.cgroupsPath, o.id);
    // written down before it exists: a kill -9 from here on leaves a state
    // that `delete --force` cleans up (what is not there yet is skipped)
    store.save({
      ociVersion: OCI_VERSION, id: o.id, pid: 0, pidStart: 0, bundle, rootfs, created: isoTime(), owner: ownerName(),
      cgroupPaths: cg.paths, cgroupCreated: cgroupsToCreate(cg), creating: true,
    });
    createCgroups(cg);
    undo.push(() => {
      destroyCgroups(cg.created);
    });
    timing(`cgroups created (${cg.created.length} directories)`);
    // a cgroup that was there before may hold someone else's processes (runc's warning)
    // runc's refusal: the init would block in the frozen cgroup and never report
    if (frozenBeforeStart(cg)) throw new TsrunError(`container's cgroup unexpectedly frozen (${cg.freezer})`);
    const existed = cg.paths.filter((p) => !cg.created.includes(p));
    if (existed.length) {
      const n = new Set(existed.flatMap((p) => cgroupPids([p]))).size;
      if (n) ctx.log.warn(`container's cgroup is not empty: ${n} process(es) found`);
    }
    // limits are in place before the init joins: nothing runs unlimited
    applyResources(cg, spec.linux?.resources);
    timing('cgroup limits written');
    // after the cgroup writes: the attach holds cgroup_mutex through its grace period
    warmAttach(cg);

    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sys = (require('../sys') as typeof import('../sys')).loadSys();
    timing(`native library loaded (${process.versions.bun ? 'bun:ffi' : 'koffi'})`);
    // cgroup v2 without a v1 devices controller: the device list as eBPF
    const df = deviceFilterTarget(cg, spec.linux?.resources);
    if (df) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { deviceProgram } = require('../cgroups/devices-ebpf') as typeof import('../cgroups/devices-ebpf');
      sys.attachDeviceFilter(df.dir, deviceProgram(df.rules));
      timing('device filter attached');
    }
    const fifo = store.fifo(o.id);
    sys.mkfifo(fifo, 0o622);
    chmodSync(fifo, 0o622);

    const plan = buildPlan(spec, {
      id: o.id, bundle, fifo, noPivot: !!o.noPivot, noNewKeyring: !!o.noNewKeyring,
      preserveFds: extraFds, cgroupProcs: cg.procs, cgroupPaths: cg.paths,
      debug: ctx.log.debugEnabled, warn: (m) => ctx.log.warn(m), consoleSocket, seccomp: planSeccomp(seccomp),
    }, { ...hostFacts(cg.hierarchies), lsm: lsmFor(spec.process) });
    const bytes = encodePlan(plan);
    timing(`plan built (${bytes.length} bytes)`);

    st = {
      ociVersion: OCI_VERSION, id: o.id, pid: 0, pidStart: 0, bundle, rootfs, created: isoTime(),
      owner: ownerName(), annotations: spec.annotations, cgroupPaths: cg.paths, cgroupCreated: cg.created,
      freezer: cg.freezer, hooks: { poststart: spec.hooks?.poststart, poststop: spec.hooks?.poststop, ...(spec.hooks?.startContainer?.length ? { startContainer: true } : {}) },
      process: spec.process, seccomp,
    };

    // Written now so that a tsrun killed half-way leaves a container that
    // `delete` can clean up (status stopped: no live init yet).
    store.save({ ...st, creating: true });
    timing('state written (creating)');

    const sp = sys.spawn(bytes, extraFds);
    sock = sp.sock;
    let pidfd = sp.pidfd;
    const stagePid = sp.pid;
    let stageReaped = false;
    undo.push(() => {
      if (initPidfd >= 0) {
        sys!.pidfdSignal(initPidfd, 9);
        sys!.pidfdWait(initPidfd, 5000);
      }
      if (!stageReaped) {
        sys!.pidfdSignal(sp.pidfd, 9);
        sys!.waitpid(stagePid);
      }
    });
    timing('stage spawned');
    const buf = Buffer.alloc(MSG_HDR + MSG_MAX);
    const stateFor = (status: 'creating' | 'created') =>
      JSON.stringify(ociState(store, { ...st!, pid: initPid }, status));
    for (;;) {
      const { n, fd } = sys.recv(sock, pidfd, buf, STAGE_SILENCE_MS);
      if (n === -110 /* ETIMEDOUT */) throw new TsrunError(stuckMessage(initPid || stagePid, STAGE_SILENCE_MS));
      if (fd >= 0) {
        const type = n > 0 ? buf.readUInt32LE(0) : 0;
        if (type === M.PTY && masterFd < 0) masterFd = fd;
        else if (type === M.SECCOMP && seccomp?.notify) sendListener(sys, seccomp, fd, initPid, ociState(store, { ...st, pid: initPid }, 'creating'));
        else sys.close(fd);
      }
      if (n === -10 /* ECHILD */) {
        if (!stageReaped && pidfd === sp.pidfd) {
          const ws = sys.waitpid(stagePid);
          stageReaped = true;
          throw new TsrunError(`container init setup exited unexpectedly (${describeWait(ws)})`);
        }
        throw new TsrunError('container init exited unexpectedly during setup');
      }
      if (n < 0) throw new TsrunError('read from container init', { errno: errnoName(n) });
      const f = decodeFrame(buf, n);
      if (f.type === M.ERROR) {
        throw new TsrunError(f.payload.toString(), f.err ? { errno: errnoName(f.err) } : {});
      } else if (f.type === M.DEBUG) {
        ctx.log.debug(`stage: ${f.payload.toString()} (received at ${(process.uptime() * 1000).toFixed(1)} ms)`);
      } else if (f.type === M.WARN) {
        ctx.log.warn(f.payload.toString());
      } else if (f.type === M.PID) {
        initPid = f.payload.readUInt32LE(0);
        initPidfd = sys.pidfdOpen(initPid);
        store.save({ ...st, creating: true, pid: initPid, pidStart: procStartTime(initPid) ?? 0 });
        // the stage exits right after; reap it and watch init from now on
        sys.waitpid(stagePid);
        stageReaped = true;
        sys.close(pidfd);
        pidfd = initPidfd;
        timing(`init is pid ${initPid}`);
      } else if (f.type === M.HOOKS) {
        // after step 2 of the lifecycle: "created" by the spec's definitions (crun too; runc says creating)
        const s = stateFor('created');
        hooksFailed = true;
        runHooks('prestart', spec.hooks?.prestart, s);
        runHooks('createRuntime', spec.hooks?.createRuntime, s);
        runHooks('createContainer', spec.hooks?.createContainer, s, { nsPid: initPid, nsCwd: rootfs, stageExe: sys.stageExe });
        hooksFailed = false;
        sys.send(sock, encodeFrame(M.HOOKS_DONE));
        timing('create hooks done');
      } else if (f.type === M.READY) {
        break;
      } else if (f.type === M.PTY) {
        if (masterFd < 0) throw new TsrunError('terminal: no pty master came with the message');
      } else if (f.type === M.SECCOMP) {
        if (fd < 0) throw new TsrunError('seccomp: no listener fd came with the message');
      } else {
        throw new TsrunError(`unexpected message ${f.type} from container init`);
      }
    }
    st.pid = initPid;
    st.pidStart = procStartTime(initPid) ?? 0;
    st.namespaces = nsPaths(initPid);
    store.save(st);
    if (o.pidFile) writeAtomic(resolve(o.pidFile), String(initPid), 0o644);
    // the state rides with GO for the startContainer hooks' stdin, whole or not at all
    const go = spec.hooks?.startContainer?.length ? Buffer.from(stateFor('created')) : Buffer.alloc(0);
    if (go.length > MSG_MAX) {
      throw new TsrunError(`hooks.startContainer: the container state is ${go.length} bytes, over the ${MSG_MAX} the stage takes for the hooks' stdin (annotations too large?)`);
    }
    sys.send(sock, encodeFrame(M.GO, go));
    sys.close(sock);
    sock = -1;
    sys.close(initPidfd);
    timing('ready (state written, init waits for start)');
    return { state: st, sys, masterFd };
  } catch (e) {
    if (sock >= 0) sys?.close(sock);
    if (masterFd >= 0) sys?.close(masterFd);
    for (const u of undo.reverse()) {
      try {
        u();
      } catch (ue) {
        ctx.log.warn(`cleanup after failed create: ${(ue as Error).message}`);
      }
    }
    // a failed prestart/createRuntime/createContainer hook: destroyed (step 12), then poststop (13)
    if (hooksFailed && st) runPoststop(ctx, { ...st, pid: initPid });
    throw e;
  } finally {
    unlock();
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

function nsPaths(pid: number): Record<string, string> {
  const r: Record<string, string> = {};
  for (const n of ['user', 'ipc', 'uts', 'net', 'pid', 'mnt', 'cgroup', 'time']) r[n] = `/proc/${pid}/ns/${n}`;
  return r;
}

function ownerName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

export function describeWait(ws: number): string {
  if (ws < 0) return errnoName(ws);
  if ((ws & 0x7f) === 0) return `exit status ${(ws >> 8) & 0xff}`;
  return `killed by signal ${ws & 0x7f}`;
}
