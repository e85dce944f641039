// The ONLY module that loads koffi: the ABI check and thin wrappers over
// native/build/libtsrun.so. No policy. Loaded lazily by the verbs that spawn.
import { writeSync } from 'node:fs';
import { TsrunError, errnoName } from '../errors';

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
  sendFdTo(path: string, fd: number, data: Buffer): void;
  /** raw mode on a tty; returns what restores it, or undefined if fd is no tty */
  ttyRaw(fd: number): Buffer | undefined;
  ttyRestore(fd: number, saved: Buffer): void;
  winsizeCopy(from: number, to: number): void;
  /** relay in -> master -> out until the pty hangs up or pidfd's process exits */
  relay(master: number, input: number, output: number, pidfd: number): Promise<void>;
}

import { ABI_VERSION } from '../protocol';
import { nativeFiles, type NativeFiles } from './native-files';


let cached: Sys | undefined;

const MFD_CLOEXEC = 1;

export function loadSys(files: NativeFiles = nativeFiles): Sys {
  if (cached) return cached;
  let koffi;
  try {
    koffi = files.koffi();
  } catch (e) {
    throw new TsrunError(`load koffi's native module (${files.where}): ${(e as Error).message}`);
  }
  const libc = koffi.load('libc.so.6');
  const memfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');
  const closeFd = libc.func('int close(int fd)');
  let lib;
  let libFd = -1;
  try {
    lib = koffi.load(files.libtsrun((name, bytes) => {
      libFd = memfdCreate(name, MFD_CLOEXEC);
      if (libFd < 0) throw new TsrunError(`memfd_create ${name}`, { errno: errnoName(koffi.errno()) });
      writeSync(libFd, bytes);
      return libFd;
    }));
  } catch (e) {
    throw new TsrunError(`load libtsrun.so (${files.where}; run "npm run build"): ${(e as Error).message}`);
  } finally {
    // dlopen() keeps its own mapping
    if (libFd >= 0) closeFd(libFd);
  }
  const abi = lib.func('int tsrun_abi_version(void)')();
  if (abi !== ABI_VERSION) throw new TsrunError(`native ABI ${abi} does not match ${ABI_VERSION}: rebuild with "npm run build"`);
  const memfdSealed = lib.func('int tsrun_memfd_sealed(const char *name, const uint8_t *data, int len, int exec)');
  const spawn = lib.func('int tsrun_spawn(int stage, const uint8_t *plan, int len, int preserve, _Out_ int *out, _Out_ uint8_t *err, int errlen)');
  const recv = lib.func('int tsrun_recv(int sock, int pidfd, _Out_ uint8_t *buf, int cap, int timeout, _Out_ int *fd)');
  const ttyRaw = lib.func('int tsrun_tty_raw(int fd, _Out_ uint8_t *saved, int len)');
  const ttyRestore = lib.func('int tsrun_tty_restore(int fd, const uint8_t *saved)');
  const winsizeCopy = lib.func('int tsrun_winsize_copy(int from, int to)');
  const relay = lib.func('int tsrun_relay(int master, int in, int out, int pidfd)');
  const bpfDevices = lib.func('int tsrun_bpf_device_filter(const char *dir, const uint8_t *insns, int count, _Out_ uint8_t *log, int loglen)');
  const sendFdTo = lib.func('int tsrun_send_fd_to(const char *path, int fd, const uint8_t *data, int len)');
  const send = lib.func('int tsrun_send(int sock, const uint8_t *buf, int len)');
  const waitpid = lib.func('int tsrun_waitpid(int pid)');
  const pidfdOpen = lib.func('int tsrun_pidfd_open(int pid)');
  const pidfdSignal = lib.func('int tsrun_pidfd_signal(int pidfd, int sig)');
  const pidfdWait = lib.func('int tsrun_pidfd_wait(int pidfd, int timeout)');
  const subreaper = lib.func('int tsrun_set_subreaper(void)');
  const close = lib.func('int tsrun_close(int fd)');
  const mkfifo = libc.func('int mkfifo(const char *path, uint32_t mode)');
  let stageFd = -1;
  const stage = (): number => {
    if (stageFd < 0) {
      const bytes = files.stage();
      const fd = memfdSealed('tsrun-stage', bytes, bytes.length, 1);
      if (fd < 0) fail('copy the stage program to a sealed memfd', fd);
      stageFd = fd;
    }
    return stageFd;
  };
  const fail = (what: string, r: number): never => {
    throw new TsrunError(what, { errno: errnoName(r) });
  };
  cached = {
    // the parent's fd by pid: a spawned child may have closed its own copy
    stageExe: () => `/proc/${process.pid}/fd/${stage()}`,
    spawn(plan, preserveFds) {
      const out = new Int32Array(3);
      const err = Buffer.alloc(128);
      const r = spawn(stage(), plan, plan.length, preserveFds, out, err, err.length);
      if (r < 0) fail(`spawn container init: ${err.toString('utf8', 0, err.indexOf(0))}`, r);
      return { sock: out[0]!, pidfd: out[1]!, pid: out[2]! };
    },
    recv(sock, pidfd, buf, timeoutMs) {
      const fd = new Int32Array(1);
      const n = recv(sock, pidfd, buf, buf.length, timeoutMs, fd);
      return { n, fd: fd[0]! };
    },
    attachDeviceFilter(dir, program) {
      const log = Buffer.alloc(4096);
      const r = bpfDevices(dir, program, program.length / 8, log, log.length);
      if (r < 0) {
        const why = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim().split('\n').pop();
        fail(`cgroup v2 device filter (eBPF) on ${dir}${why ? ` (verifier: ${why})` : ''}`, r);
      }
    },
    sendFdTo(path, fd, data) {
      const r = sendFdTo(path, fd, data, data.length);
      if (r < 0) fail(`failed to connect with seccomp agent (listenerPath ${path})`, r);
    },
    ttyRaw(fd) {
      const saved = Buffer.alloc(256);
      return ttyRaw(fd, saved, saved.length) < 0 ? undefined : saved;
    },
    ttyRestore(fd, saved) {
      ttyRestore(fd, saved);
    },
    winsizeCopy(from, to) {
      winsizeCopy(from, to);
    },
    relay(master, input, output, pidfd) {
      return new Promise((resolve, reject) => {
        relay.async(master, input, output, pidfd, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    },
    send(sock, buf) {
      const r = send(sock, buf, buf.length);
      if (r < 0) fail('send to container init', r);
    },
    waitpid(pid) {
      return waitpid(pid);
    },
    waitpidAsync(pid) {
      return new Promise((resolve, reject) => {
        waitpid.async(pid, (e: Error | null, r: number) => (e ? reject(e) : resolve(r)));
      });
    },
    pidfdOpen(pid) {
      const r = pidfdOpen(pid);
      if (r < 0) fail(`pidfd_open ${pid}`, r);
      return r;
    },
    pidfdSignal(pidfd, sig) {
      return pidfdSignal(pidfd, sig);
    },
    pidfdWait(pidfd, timeoutMs) {
      return pidfdWait(pidfd, timeoutMs) > 0;
    },
    setSubreaper() {
      const r = subreaper();
      if (r < 0) fail('set child subreaper', r);
    },
    close(fd) {
      close(fd);
    },
    mkfifo(path, mode) {
      if (mkfifo(path, mode) < 0) fail(`mkfifo ${path}`, koffi.errno());
    },
  };
  return cached;
}
