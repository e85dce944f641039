// LaunchPlan -> the one buffer the native stage reads, and the sync frames.
// The numbers are native/include/tsrun.h's (lib/protocol/abi.ts, generated).
import type { LaunchPlan } from '../plan';
import { ABI_VERSION, MSG_HDR, MSG_MAX, PLAN_MAGIC, T, TT } from './abi';

export { ABI_VERSION, M, MSG_HDR, MSG_MAX, T, TM, TT } from './abi';

type Part = number | bigint | string | Buffer | { i32: number } | { u64: bigint };

// One growing buffer, written in place: a plan is ~100 records, and a
// Buffer.alloc per field (as before) cost ~2 ms of a create.
class Writer {
  private buf = Buffer.allocUnsafe(4096);
  private at = 0;
  constructor() {
    this.u32(PLAN_MAGIC);
    this.u32(ABI_VERSION);
  }
  private room(n: number) {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
  private u32(v: number) {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.at);
    this.at += 4;
  }
  rec(tag: number, ...parts: Part[]) {
    this.room(8);
    const head = this.at;
    this.buf.writeUInt32LE(tag, head); // u16 tag + u16 zero padding
    this.at += 8;
    for (const p of parts) {
      if (typeof p === 'number') {
        this.u32(p);
      } else if (typeof p === 'bigint') {
        this.room(8);
        this.buf.writeBigUInt64LE(p, this.at);
        this.at += 8;
      } else if (typeof p === 'string') {
        if (p.includes('\0')) throw new Error(`string with a NUL byte: ${JSON.stringify(p)}`);
        const n = Buffer.byteLength(p);
        this.room(n + 1);
        this.buf.write(p, this.at);
        this.buf[this.at + n] = 0;
        this.at += n + 1;
      } else if (Buffer.isBuffer(p)) {
        this.room(p.length);
        p.copy(this.buf, this.at);
        this.at += p.length;
      } else if ('i32' in p) {
        this.room(4);
        this.buf.writeInt32LE(p.i32, this.at);
        this.at += 4;
      } else {
        this.room(8);
        this.buf.writeBigUInt64LE(p.u64, this.at);
        this.at += 8;
      }
    }
    this.buf.writeUInt32LE(this.at - head - 8, head + 4);
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.at));
  }
}

export function encodePlan(p: LaunchPlan): Buffer {
  const w = new Writer();
  w.rec(T.ROOTFS, p.rootfs);
  if (p.rootReadonly) w.rec(T.ROOT_READONLY);
  if (p.rootPropagation) w.rec(T.ROOT_PROPAGATION, p.rootPropagation);
  if (p.noPivot) w.rec(T.NO_PIVOT);
  w.rec(T.NS_NEW, p.nsNew);
  for (const j of p.nsJoin) w.rec(T.NS_JOIN, j.flag, j.path);
  if (p.uidMap) w.rec(T.UID_MAP, p.uidMap);
  if (p.gidMap) w.rec(T.GID_MAP, p.gidMap);
  if (p.setgroupsDeny) w.rec(T.SETGROUPS_DENY);
  if (p.idmapHelpers) w.rec(T.IDMAP_HELPERS, p.idmapHelpers.uid, p.idmapHelpers.gid);
  if (p.timensOffsets !== undefined) w.rec(T.TIMENS_OFFSETS, p.timensOffsets);
  for (const c of p.cgroupProcs) w.rec(T.CGROUP_PROCS, c);
  if (p.oomScoreAdj !== undefined) w.rec(T.OOM_SCORE_ADJ, { i32: p.oomScoreAdj });
  if (p.hostname !== undefined) w.rec(T.HOSTNAME, p.hostname);
  if (p.domainname !== undefined) w.rec(T.DOMAINNAME, p.domainname);
  for (const [k, v] of p.sysctl) w.rec(T.SYSCTL, k, v);
  for (const m of p.mounts) {
    w.rec(T.MOUNT, m.flags, m.pflags, m.attrSet, m.attrClr, m.extra, m.source, m.destination, m.type, m.data);
    if (m.idmap) w.rec(T.MOUNT_IDMAP, m.idmap.recursive ? 1 : 0, m.idmap.uidMap, m.idmap.gidMap, m.idmap.usernsPath);
  }
  if (p.devSetup) w.rec(T.DEV_SETUP);
  if (p.usernsDevices) w.rec(T.USERNS_DEVICES);
  for (const d of p.devices) {
    w.rec(T.DEVICE, d.type.charCodeAt(0), d.major, d.minor, d.mode, d.uid, d.gid, d.path);
  }
  for (const [target, path] of p.symlinks) w.rec(T.SYMLINK, target, path);
  for (const m of p.masked) w.rec(T.MASKED, m);
  for (const r of p.readonly) w.rec(T.READONLY_PATH, r);
  for (const r of p.rlimits) w.rec(T.RLIMIT, r.res, 0, r.soft, r.hard);
  w.rec(T.USER, p.uid, p.gid, { i32: p.umask });
  if (p.groups.length) w.rec(T.GROUPS, p.groups.length, ...p.groups);
  if (p.caps) w.rec(T.CAPS, ...p.caps);
  if (p.noNewPrivs) w.rec(T.NO_NEW_PRIVS);
  w.rec(T.CWD, p.cwd);
  for (const a of p.args) w.rec(T.ARG, a);
  for (const e of p.env) w.rec(T.ENV, e);
  if (p.fifo) w.rec(T.FIFO, p.fifo);
  if (p.syncHooks) w.rec(T.SYNC_HOOKS);
  for (const h of p.startHooks) {
    const args = h.args ?? [];
    const env = h.env ?? [];
    w.rec(T.START_HOOK, h.timeout ?? 0, args.length, env.length, h.path, ...args, ...env);
  }
  if (p.keyring) w.rec(T.NEW_KEYRING, p.keyring);
  if (p.preserveFds) w.rec(T.PRESERVE_FDS, p.preserveFds);
  if (p.personality !== undefined) w.rec(T.PERSONALITY, p.personality);
  if (p.memoryPolicy) w.rec(T.MEMPOLICY, p.memoryPolicy.mode, p.memoryPolicy.maxnode, p.memoryPolicy.nodemask);
  if (p.ioPriority !== undefined) w.rec(T.IOPRIO, p.ioPriority);
  if (p.scheduler) {
    const s = p.scheduler;
    w.rec(T.SCHED, s.policy, s.priority, { i32: s.nice }, 0, s.flags, s.runtime, s.deadline, s.period);
  }
  if (p.affinityInitial) w.rec(T.AFFINITY, 0, p.affinityInitial);
  if (p.affinityFinal) w.rec(T.AFFINITY, 1, p.affinityFinal);
  if (p.lsmExec) w.rec(T.LSM_EXEC, p.lsmExec.file, p.lsmExec.value);
  if (p.seccomp) w.rec(T.SECCOMP, p.seccomp.flags, p.seccomp.notify ? 1 : 0, p.seccomp.program);
  if (p.terminal) w.rec(T.TERMINAL, p.terminal.console ? TT.CONSOLE : 0, p.terminal.rows, p.terminal.cols, p.terminal.socket);
  if (p.debug) w.rec(T.DEBUG);
  return w.done();
}

export interface Frame {
  type: number;
  err: number;
  payload: Buffer;
}

export function decodeFrame(buf: Buffer, n: number): Frame {
  if (n < MSG_HDR) throw new Error(`sync frame too short (${n} bytes)`);
  const type = buf.readUInt32LE(0);
  const err = buf.readInt32LE(4);
  const len = buf.readUInt32LE(8);
  if (len > MSG_MAX || MSG_HDR + len !== n) throw new Error(`sync frame length ${len} does not match ${n - MSG_HDR}`);
  return { type, err, payload: buf.subarray(MSG_HDR, MSG_HDR + len) };
}

export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MSG_MAX) throw new Error('sync frame payload too large');
  const h = Buffer.alloc(MSG_HDR);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(payload.length, 8);
  return Buffer.concat([h, payload]);
}
