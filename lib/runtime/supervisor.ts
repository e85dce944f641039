// The runtime's side of the sync socket, one for create and exec: the
// stage's frames are taken in their phase order (PID, then HOOKS when the
// plan asked for them, then READY; DEBUG/WARN/ERROR at any time) and any
// frame out of that order is an error. The supervisor owns the stage and
// the init until READY: abort() kills and reaps what is still there.
import { TsrunError, errnoName } from '../errors';
import { decodeFrame, encodeFrame, M, MSG_HDR, MSG_MAX } from '../protocol';
import type { Sys } from '../sys';
import { STAGE_SILENCE_MS, stuckMessage } from './silence';

/** what sys.recv returns besides a length: a negative errno */
const RECV_TIMEOUT = -110; // -ETIMEDOUT: silent for STAGE_SILENCE_MS
const PROCESS_GONE = -10; // -ECHILD: the watched process exited (or every writer closed)
const SIGKILL = 9;
/** how long abort() waits for a killed init to be gone */
const KILL_WAIT_MS = 5000;

enum Phase { Spawned, Init, HooksDone, Ready }

export interface StageHandlers {
  /** "" for create, "exec: " for exec: the start of every error */
  prefix: string;
  /** the init's pid has arrived; the stage is reaped and the init watched */
  pid?(pid: number): void;
  /** create's hooks while the init waits before pivot_root; without it a HOOKS frame is out of order */
  hooks?(): void;
  /** a seccomp listener fd from the init (owned by the handler) */
  seccomp?(fd: number): void;
  debug(line: string): void;
  warn(line: string): void;
}

export class Supervisor {
  pid = 0;
  /** the pty master the init sent (M_PTY), else -1; the caller owns it */
  masterFd = -1;
  private phase = Phase.Spawned;
  private watched: number; // pidfd of the stage, then of the init
  private initPidfd = -1;
  private stageReaped = false;
  private readonly buf = Buffer.alloc(MSG_HDR + MSG_MAX);

  constructor(private readonly sys: Sys, private readonly sp: { sock: number; pidfd: number; pid: number },
    private readonly h: StageHandlers) {
    this.watched = sp.pidfd;
  }

  /** Frames until READY (then the caller sends GO with go()). */
  untilReady(): void {
    while (this.phase !== Phase.Ready) {
      const { n, fd } = this.sys.recv(this.sp.sock, this.watched, this.buf, STAGE_SILENCE_MS);
      if (n === RECV_TIMEOUT) throw new TsrunError(stuckMessage(this.pid || this.sp.pid, STAGE_SILENCE_MS));
      if (fd >= 0) this.keepFd(n > 0 ? this.buf.readUInt32LE(0) : 0, fd);
      if (n < 0) this.lost(n);
      this.frame(n, fd);
    }
  }

  go(payload: Buffer = Buffer.alloc(0)): void {
    this.sys.send(this.sp.sock, encodeFrame(M.GO, payload));
  }

  /** The init's pidfd, now the caller's to close. */
  takeInitPidfd(): number {
    const fd = this.initPidfd;
    this.initPidfd = -1;
    return fd;
  }

  /** After READY and GO: the socket and the pidfd not taken. */
  close(): void {
    this.sys.close(this.sp.sock);
    if (this.initPidfd >= 0) this.sys.close(this.initPidfd);
    this.initPidfd = -1;
  }

  /** Rollback: the init killed and waited for, the stage killed and reaped. */
  abort(): void {
    if (this.masterFd >= 0) this.sys.close(this.masterFd);
    this.masterFd = -1;
    if (this.initPidfd >= 0) {
      this.sys.pidfdSignal(this.initPidfd, SIGKILL);
      this.sys.pidfdWait(this.initPidfd, KILL_WAIT_MS);
    }
    if (!this.stageReaped) {
      this.sys.pidfdSignal(this.sp.pidfd, SIGKILL);
      this.reapStage();
    }
    this.close();
  }

  private reapStage(): number {
    const ws = this.sys.waitpid(this.sp.pid);
    this.stageReaped = true;
    if (this.watched === this.sp.pidfd && this.initPidfd >= 0) this.watched = this.initPidfd;
    this.sys.close(this.sp.pidfd);
    return ws;
  }

  private keepFd(type: number, fd: number): void {
    if (type === M.PTY && this.masterFd < 0 && this.phase !== Phase.Spawned) this.masterFd = fd;
    else if (type === M.SECCOMP && this.h.seccomp && this.phase !== Phase.Spawned) this.h.seccomp(fd);
    else this.sys.close(fd);
  }

  private lost(n: number): never {
    if (n !== PROCESS_GONE) throw new TsrunError(`${this.h.prefix}read from the container's stage`, { errno: errnoName(n) });
    if (!this.stageReaped) {
      const ws = this.reapStage();
      throw new TsrunError(`${this.h.prefix}container init setup exited unexpectedly (${describeWait(ws)})`);
    }
    throw new TsrunError(`${this.h.prefix}container process exited unexpectedly during setup`);
  }

  private outOfOrder(type: number): never {
    throw new TsrunError(`${this.h.prefix}unexpected message ${type} from the container's stage in phase ${Phase[this.phase]}`);
  }

  private frame(n: number, fd: number): void {
    const f = decodeFrame(this.buf, n);
    const p = this.h.prefix;
    switch (f.type) {
      case M.ERROR: throw new TsrunError(f.payload.toString(), f.err ? { errno: errnoName(f.err) } : {});
      case M.DEBUG: this.h.debug(f.payload.toString()); return;
      case M.WARN: this.h.warn(f.payload.toString()); return;
      case M.PID:
        if (this.phase !== Phase.Spawned) this.outOfOrder(f.type);
        this.initPid(f.payload.readUInt32LE(0));
        return;
      case M.HOOKS:
        if (this.phase !== Phase.Init || !this.h.hooks) this.outOfOrder(f.type);
        this.h.hooks();
        this.sys.send(this.sp.sock, encodeFrame(M.HOOKS_DONE));
        this.phase = Phase.HooksDone;
        return;
      case M.READY:
        if (this.phase === Phase.Spawned) this.outOfOrder(f.type);
        this.phase = Phase.Ready;
        return;
      case M.PTY:
        if (this.phase === Phase.Spawned) this.outOfOrder(f.type);
        if (this.masterFd < 0) throw new TsrunError(`${p}terminal: no pty master came with the message`);
        return;
      case M.SECCOMP:
        if (this.phase === Phase.Spawned) this.outOfOrder(f.type);
        if (fd < 0) throw new TsrunError(`${p}seccomp: no listener fd came with the message`);
        return;
      default: this.outOfOrder(f.type);
    }
  }

  /** The init exists and waits for its release: watched from now on (it cannot have exited yet). */
  private initPid(pid: number): void {
    this.pid = pid;
    this.initPidfd = this.sys.pidfdOpen(pid);
    this.phase = Phase.Init;
    // the stage exits right after sending the pid
    this.reapStage();
    this.h.pid?.(pid);
  }
}

export function describeWait(ws: number): string {
  if (ws < 0) return errnoName(ws);
  if ((ws & 0x7f) === 0) return `exit status ${(ws >> 8) & 0xff}`;
  return `killed by signal ${ws & 0x7f}`;
}
