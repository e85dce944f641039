// exec: a new process in a running container. It joins every namespace of
// the container (user first) and its cgroup through the stage, is
// non-dumpable until execve (CVE-2016-9962) and gets the container's process
// settings unless process.json or the flags say otherwise.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { controllerDir, hostHierarchies } from '../cgroups';
import { join, resolve } from 'node:path';
import { exitCode, forwardSignals } from './signals';
import { copyCallerSize, startRelay, terminalSocket } from './tty';
import { Supervisor } from './supervisor';
import { sendPidfd } from './pidfd';
import { TsrunError, errnoName } from '../errors';
import { buildExecPlan } from '../plan';
import { encodePlan } from '../protocol';
import { deriveStatus, ociState, writeAtomic } from '../state';
import { planSeccomp, sendListener } from './seccomp';
import { lsmFor } from './lsm';
import { CAPS, NAMESPACES } from '../spec/tables';
import type { Process } from '../spec/types';
import type { Context } from './context';

export interface ExecOptions {
  id: string;
  /** an AF_UNIX socket that receives the process's pidfd */
  pidfdSocket?: string;
  process?: string;
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  additionalGids?: string[];
  cap?: string[];
  noNewPrivs?: boolean;
  tty?: boolean;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  preserveFds?: number;
  ignorePaused?: boolean;
  cgroup?: string[];
  apparmor?: string;
  processLabel?: string;
}

// the order the stage joins them in (runc's): the user namespace first, the mount namespace late
const NS = ['user', 'ipc', 'uts', 'network', 'pid', 'mount', 'cgroup', 'time'].map((t) => NAMESPACES[t]!);

/** --apparmor and --process-label override the process's labels, as runc. */
function labels(p: Process, o: ExecOptions): void {
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  if (o.processLabel) p.selinuxLabel = o.processLabel;
}

function execProcess(base: Process | undefined, o: ExecOptions): Process {
  if (o.process) {
    let p: Process;
    try {
      p = JSON.parse(readFileSync(o.process, 'utf8'));
    } catch (e) {
      throw new TsrunError(`--process ${o.process}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!p || typeof p !== 'object') throw new TsrunError(`--process ${o.process}: not a process object`);
    if (!Array.isArray(p.args) || p.args.length === 0) throw new TsrunError(`--process ${o.process}: args: must not be empty`);
    if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')) throw new TsrunError(`--process ${o.process}: cwd: must be an absolute path`);
    if (o.tty) p.terminal = true;
    labels(p, o);
    return p;
  }
  if (!o.args.length) throw new TsrunError('exec: a command or --process is required');
  const p: Process = JSON.parse(JSON.stringify(base ?? { cwd: '/' }));
  p.args = o.args;
  p.terminal = !!o.tty;
  if (o.env?.length) p.env = [...(p.env ?? []), ...o.env];
  if (o.cwd) p.cwd = o.cwd;
  if (o.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (!m) throw new TsrunError(`--user: expected <uid>[:<gid>], got ${JSON.stringify(o.user)}`);
    p.user = { ...(p.user ?? {}), uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : p.user?.gid ?? 0 };
  }
  if (o.additionalGids?.length) {
    const g = o.additionalGids.map((x) => {
      if (!/^\d+$/.test(x)) throw new TsrunError(`--additional-gids: ${JSON.stringify(x)} is not a gid`);
      return Number(x);
    });
    p.user = { ...(p.user ?? {}), additionalGids: g };
  }
  for (const c of o.cap ?? []) {
    const name = c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`;
    if (!CAPS.includes(name)) throw new TsrunError(`--cap: unknown capability ${JSON.stringify(c)}`);
    const caps = (p.capabilities ??= {});
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...new Set([...(caps[set] ?? []), name])];
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  labels(p, o);
  if (!p.cwd.startsWith('/')) throw new TsrunError(`--cwd: must be an absolute path, got ${JSON.stringify(p.cwd)}`);
  return p;
}

/**
 * --cgroup [<controllers>:]<path>, repeatable, as runc: the process joins an
 * existing sub-cgroup of the container's, in the hierarchies of the named
 * controllers (v1) or in all of them when no controller is named.
 */
export function subCgroups(paths: string[], specs: string[], hier = hostHierarchies()): string[] {
  const sub = new Map<string, string>(); // container cgroup dir -> sub path
  let all: string | undefined;
  for (const v of specs) {
    const i = v.indexOf(':');
    const ctrls = i >= 0 ? v.slice(0, i).split(',').filter(Boolean) : [];
    const path = i >= 0 ? v.slice(i + 1) : v;
    // runc's words; joined under the container's cgroup ("/x" too), never climbing out
    if (!path || path.split('/').includes('..')) {
      throw new TsrunError(`exec: --cgroup ${JSON.stringify(v)}: ${path} is not a sub cgroup path`);
    }
    if (!ctrls.length) {
      if (all !== undefined) throw new TsrunError(`exec: --cgroup ${JSON.stringify(v)}: a path for all controllers was already given`);
      all = path;
      continue;
    }
    for (const c of ctrls) {
      const dir = controllerDir(paths, c, hier.filter((h) => h.version === 1))?.dir;
      if (!dir) throw new TsrunError(`exec: --cgroup ${JSON.stringify(v)}: the container has no cgroup for controller ${c}`);
      sub.set(dir, path);
    }
  }
  return paths.map((p) => {
    const s = sub.get(p) ?? all;
    if (s === undefined) return p;
    const d = join(p, s);
    if (!existsSync(join(d, 'cgroup.procs'))) throw new TsrunError(`exec: --cgroup: ${d} does not exist (the sub-cgroup must exist)`);
    return d;
  });
}

/** The init's namespaces that are not ours: what the process joins. */
function namespacesOf(pid: number): { flag: number; path: string }[] {
  const nsJoin: { flag: number; path: string }[] = [];
  for (const { flag, proc: n } of NS) {
    const theirs = `/proc/${pid}/ns/${n}`;
    let a: string;
    try {
      a = readlinkSync(theirs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && n === 'time') continue;
      throw new TsrunError(`exec: container namespace ${theirs}`, { errno: (e as NodeJS.ErrnoException).code });
    }
    if (a !== readlinkSync(`/proc/self/ns/${n}`)) nsJoin.push({ flag, path: theirs });
  }
  return nsJoin;
}

export async function exec(ctx: Context, o: ExecOptions): Promise<number> {
  const st = ctx.store.load(o.id);
  const status = deriveStatus(ctx.store, st);
  if (status === 'stopped') throw new TsrunError('cannot exec in a stopped container');
  if (status === 'paused' && !o.ignorePaused) throw new TsrunError('cannot exec in a paused container (use --ignore-paused to override)');
  const proc = execProcess(st.process, o);
  const consoleSocket = terminalSocket(proc.terminal, o.consoleSocket, !o.detach);
  if ((o.preserveFds ?? 0) < 0) throw new TsrunError('--preserve-fds: must not be negative');

  const nsJoin = namespacesOf(st.pid);
  let lastCap = 40;
  try {
    lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  } catch {
    /* default */
  }
  const cgroupDirs = o.cgroup?.length ? subCgroups(st.cgroupPaths, o.cgroup) : st.cgroupPaths;
  // the container shares our mount namespace: its root is the init's chroot
  const root = nsJoin.some((j) => j.flag === NAMESPACES.mount!.flag) ? '/' : `/proc/${st.pid}/root`;
  const plan = buildExecPlan(proc, nsJoin, cgroupDirs.map((p) => join(p, 'cgroup.procs')), lastCap,
    o.preserveFds ?? 0, ctx.log.debugEnabled, (m) => ctx.log.warn(m), consoleSocket, planSeccomp(st.seccomp), lsmFor(proc), root);

  const sys = ctx.sys();
  if (!o.detach) sys.setSubreaper();
  const sv = new Supervisor(sys, sys.spawn(encodePlan(plan), o.preserveFds ?? 0), {
    prefix: 'exec: ',
    debug: (m) => ctx.log.debug(`stage: ${m}`),
    warn: (m) => ctx.log.warn(m),
    seccomp: st.seccomp?.notify ? (fd) => sendListener(sys, st.seccomp!, fd, sv.pid, ociState(ctx.store, st, 'running')) : undefined,
  });
  // the process's own pidfd, held from when its pid arrives (it cannot have
  // exited then: it waits for GO) for the relay: opening one later races
  // with a short-lived process being reaped
  let procPidfd = -1;
  try {
    sv.untilReady();
    if (o.pidFile) writeAtomic(resolve(o.pidFile), String(sv.pid), 0o644);
    sendPidfd(sys, o.pidfdSocket, sv.pid);
    if (!o.detach && sv.masterFd >= 0) {
      copyCallerSize(sys, sv.masterFd);
      procPidfd = sv.takeInitPidfd();
    }
    sv.go();
    sv.close();
  } catch (e) {
    const pid = sv.pid;
    if (procPidfd >= 0) {
      sys.pidfdSignal(procPidfd, 9);
      sys.close(procPidfd);
    }
    sv.abort();
    // as our subreaper child, the killed process is reaped here
    if (pid && !o.detach) await sys.waitpidAsync(pid);
    throw e;
  }
  const pid = sv.pid;
  const masterFd = sv.masterFd;
  if (o.detach) return 0;
  const stopForwarding = forwardSignals(pid, masterFd >= 0);
  try {
    const waiting = sys.waitpidAsync(pid);
    const relay = masterFd >= 0 ? startRelay(sys, masterFd, procPidfd) : undefined;
    const ws = await waiting;
    await relay?.done;
    if (ws < 0) throw new TsrunError(`wait for exec process ${pid}`, { errno: errnoName(ws) });
    return exitCode(ws);
  } finally {
    stopForwarding();
  }
}
