// The ONLY module that calls native code: the ABI check and thin wrappers
// over native/build/libtsrun.so, bound by lib/sys/ffi. No policy. Loaded
// lazily by the verbs that spawn.
import { closeSync, read, writeSync } from 'node:fs';
import { TsrunError, errnoName } from '../errors';
import type { NativeFn } from './ffi';

export interface Sys {
  /** a path that executes the stage program (a sealed memfd of this process) */
  stageExe(): string;
  spawn(plan: Buffer, preserveFds: number): { sock: number; pidfd: number; pid: number };
  /** a message's length (or -errno); fd: a descriptor sent with it, else -1 */
  recv(sock: number, pidfd: number, buf: Buffer, timeoutMs: number): { n: number; fd: number };
  send(sock: number, buf: Buffer): void;
  waitpid(pid: number): number;
  waitpidAsync(pid: number): Promise<number>;
  pidfdOpen(pid: number): number;
  pidfdSignal(pidfd: number, sig: number): number;
  pidfdWait(pidfd: number, timeoutMs: number): boolean;
  setSubreaper(): void;
  close(fd: number): void;
  mkfifo(path: string, mode: number): void;
  /** load a cgroup device eBPF program and attach it to a cgroup v2 directory */
  attachDeviceFilter(dir: string, program: Buffer): void;
  /** connect to a unix socket and send fd with data (SCM_RIGHTS) */
  sendFdTo(path: string, fd: number, data: Buffer, what: string): void;
  /** raw mode on a tty; returns what restores it, or undefined if fd is no tty */
  ttyRaw(fd: number): Buffer | undefined;
  ttyRestore(fd: number, saved: Buffer): void;
  winsizeCopy(from: number, to: number): void;
  /** move host interface NAME into the network namespace at NETNS as NEWNAME, with its addresses, up */
  netdevMove(name: string, newname: string, netns: string): void;
  /** relay in -> master -> out until the pty hangs up or pidfd's process exits */
  relay(master: number, input: number, output: number, pidfd: number): Promise<void>;
}

import { ABI_VERSION } from '../protocol';
import { nativeFiles, type NativeFiles } from './native-files';

let cached: Sys | undefined;

const MFD_CLOEXEC = 1;

// libtsrun's functions, declared once for either binder (lib/sys/ffi)
const LIBTSRUN = [
  'int tsrun_abi_version(void)',
  'int tsrun_memfd_sealed(const char *name, const uint8_t *data, int len, int exec)',
  'int tsrun_spawn(int stage, const uint8_t *plan, int len, int preserve, _Out_ int *out, _Out_ uint8_t *err, int errlen)',
  'int tsrun_recv(int sock, int pidfd, _Out_ uint8_t *buf, int cap, int timeout, _Out_ int *fd)',
  'int tsrun_tty_raw(int fd, _Out_ uint8_t *saved, int len)',
  'int tsrun_tty_restore(int fd, const uint8_t *saved)',
  'int tsrun_winsize_copy(int from, int to)',
  'int tsrun_relay_bg(int master, int in, int out, int pidfd)',
  'int tsrun_bpf_device_filter(const char *dir, const uint8_t *insns, int count, _Out_ uint8_t *log, int loglen)',
  'int tsrun_send_fd_to(const char *path, int fd, const uint8_t *data, int len)',
  'int tsrun_send(int sock, const uint8_t *buf, int len)',
  'int tsrun_waitpid(int pid)',
  'int tsrun_waitpid_bg(int pid)',
  'int tsrun_pidfd_open(int pid)',
  'int tsrun_pidfd_signal(int pidfd, int sig)',
  'int tsrun_pidfd_wait(int pidfd, int timeout)',
  'int tsrun_set_subreaper(void)',
  'int tsrun_close(int fd)',
  'int tsrun_mkfifo(const char *path, unsigned int mode)',
  'int tsrun_netdev_move(const char *name, const char *newname, const char *netns, _Out_ uint8_t *err, int errlen)',
];

/** The 4-byte result a *_bg call's thread writes to FD when it returns. */
function bgResult(fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const b = Buffer.alloc(4);
    read(fd, b, 0, 4, null, (e, n) => {
      closeSync(fd);
      if (e) reject(e);
      else resolve(n === 4 ? b.readInt32LE(0) : -5 /* EIO */);
    });
  });
}

export function loadSys(files: NativeFiles = nativeFiles): Sys {
  if (cached) return cached;
  const n = bindLibtsrun(files);
  const stage = stageFd(n, files);
  cached = { ...processCalls(n, stage), ...fdCalls(n) };
  return cached;
}

const fail = (what: string, r: number): never => {
  throw new TsrunError(what, { errno: errnoName(r) });
};

/** libtsrun.so bound from a memfd (no file to plant), its ABI checked against ours. */
function bindLibtsrun(files: NativeFiles): Record<string, NativeFn> {
  let ffi;
  try {
    ffi = files.ffi();
  } catch (e) {
    throw new TsrunError(`load the foreign-function interface (${files.where}): ${(e as Error).message}`);
  }
  const libc = ffi.load('libc.so.6', ['int memfd_create(const char *name, unsigned int flags)', 'int close(int fd)']);
  let n: Record<string, NativeFn>;
  let libFd = -1;
  try {
    n = ffi.load(files.libtsrun((name, bytes) => {
      libFd = libc.memfd_create!(name, MFD_CLOEXEC);
      if (libFd < 0) throw new TsrunError(`memfd_create ${name}`, ffi.errno() ? { errno: errnoName(ffi.errno()) } : {});
      writeSync(libFd, bytes);
      return libFd;
    }), LIBTSRUN);
  } catch (e) {
    throw new TsrunError(`load libtsrun.so (${files.where}; run "npm run build"): ${(e as Error).message}`);
  } finally {
    // dlopen() keeps its own mapping
    if (libFd >= 0) libc.close!(libFd);
  }
  const abi = n.tsrun_abi_version!();
  if (abi !== ABI_VERSION) throw new TsrunError(`native ABI ${abi} does not match ${ABI_VERSION}: rebuild with "npm run build"`);
  return n;
}

/** The stage program in a sealed memfd, made on first use. */
function stageFd(n: Record<string, NativeFn>, files: NativeFiles): () => number {
  let fd = -1;
  return () => {
    if (fd < 0) {
      const bytes = files.stage();
      const r = n.tsrun_memfd_sealed!('tsrun-stage', bytes, bytes.length, 1);
      if (r < 0) fail('copy the stage program to a sealed memfd', r);
      fd = r;
    }
    return fd;
  };
}

type ProcessCalls = Pick<Sys, 'stageExe' | 'spawn' | 'recv' | 'send' | 'waitpid' | 'waitpidAsync' | 'pidfdOpen' | 'pidfdSignal' | 'pidfdWait' | 'setSubreaper' | 'close' | 'mkfifo' | 'netdevMove'>;

/** Spawning the stage, talking to it, waiting for and signalling processes. */
function processCalls(n: Record<string, NativeFn>, stage: () => number): ProcessCalls {
  return {
    // the parent's fd by pid: a spawned child may have closed its own copy
    stageExe: () => `/proc/${process.pid}/fd/${stage()}`,
    spawn(plan, preserveFds) {
      const out = new Int32Array(3);
      const err = Buffer.alloc(128);
      const r = n.tsrun_spawn!(stage(), plan, plan.length, preserveFds, out, err, err.length);
      if (r < 0) fail(`spawn container init: ${err.toString('utf8', 0, err.indexOf(0))}`, r);
      return { sock: out[0]!, pidfd: out[1]!, pid: out[2]! };
    },
    recv(sock, pidfd, buf, timeoutMs) {
      const fd = new Int32Array(1);
      const r = n.tsrun_recv!(sock, pidfd, buf, buf.length, timeoutMs, fd);
      return { n: r, fd: fd[0]! };
    },
    send(sock, buf) {
      const r = n.tsrun_send!(sock, buf, buf.length);
      if (r < 0) fail('send to container init', r);
    },
    waitpid: (pid) => n.tsrun_waitpid!(pid),
    waitpidAsync(pid) {
      const fd = n.tsrun_waitpid_bg!(pid);
      if (fd < 0) fail(`wait for ${pid}: start its thread`, fd);
      return bgResult(fd);
    },
    pidfdOpen(pid) {
      const r = n.tsrun_pidfd_open!(pid);
      if (r < 0) fail(`pidfd_open ${pid}`, r);
      return r;
    },
    pidfdSignal: (pidfd, sig) => n.tsrun_pidfd_signal!(pidfd, sig),
    pidfdWait: (pidfd, timeoutMs) => n.tsrun_pidfd_wait!(pidfd, timeoutMs) > 0,
    setSubreaper() {
      const r = n.tsrun_set_subreaper!();
      if (r < 0) fail('set child subreaper', r);
    },
    close(fd) {
      n.tsrun_close!(fd);
    },
    mkfifo(path, mode) {
      const r = n.tsrun_mkfifo!(path, mode);
      if (r < 0) fail(`mkfifo ${path}`, r);
    },
    netdevMove(name, newname, netns) {
      const err = Buffer.alloc(160);
      const r = n.tsrun_netdev_move!(name, newname, netns, err, err.length);
      if (r < 0) fail(`config.json: linux.netDevices.${name}: ${err.toString('utf8', 0, Math.max(0, err.indexOf(0)))}`, r);
    },
  };
}

type FdCalls = Pick<Sys, 'attachDeviceFilter' | 'sendFdTo' | 'ttyRaw' | 'ttyRestore' | 'winsizeCopy' | 'relay'>;

/** Terminals, fd passing and the device filter. */
function fdCalls(n: Record<string, NativeFn>): FdCalls {
  return {
    attachDeviceFilter(dir, program) {
      const log = Buffer.alloc(4096);
      const r = n.tsrun_bpf_device_filter!(dir, program, program.length / 8, log, log.length);
      if (r < 0) {
        const why = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim().split('\n').pop();
        fail(`cgroup v2 device filter (eBPF) on ${dir}${why ? ` (verifier: ${why})` : ''}`, r);
      }
    },
    sendFdTo(path, fd, data, what) {
      const r = n.tsrun_send_fd_to!(path, fd, data, data.length);
      if (r < 0) fail(what, r);
    },
    ttyRaw(fd) {
      const saved = Buffer.alloc(256);
      return n.tsrun_tty_raw!(fd, saved, saved.length) < 0 ? undefined : saved;
    },
    ttyRestore(fd, saved) {
      n.tsrun_tty_restore!(fd, saved);
    },
    winsizeCopy(from, to) {
      n.tsrun_winsize_copy!(from, to);
    },
    async relay(master, input, output, pidfd) {
      const fd = n.tsrun_relay_bg!(master, input, output, pidfd);
      if (fd < 0) fail('terminal relay: start its thread', fd);
      await bgResult(fd);
    },
  };
}
