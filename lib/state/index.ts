// State directory layout, atomic writes, the per-container lock and status
// derivation. The state on disk is never trusted for status: the pid must be
// alive with the recorded start time (pid reuse), the exec fifo present means
// created, a frozen cgroup means paused.
import {
  closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, readSync, renameSync, rmdirSync, rmSync,
  unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { TsrunError, sysError } from '../errors';
import { sleep } from '../sleep';
import { isFrozenFile } from '../cgroups/manager';
import type { Hook, Process } from '../spec/types';

export { SPEC_VERSION as OCI_VERSION } from '../spec/version';
export type { Hook } from '../spec/types';
export { sleep };

/** the prefix of a state dir being removed: `.deleted-<id>-<pid of the remover>` */
const TOMB = '.deleted-';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type Status = 'creating' | 'created' | 'running' | 'stopped' | 'paused';


/** What tsrun keeps in <root>/<id>/state.json. */
export interface StoredState {
  ociVersion: string;
  id: string;
  pid: number;
  /** start time of pid, field 22 of /proc/<pid>/stat: detects pid reuse */
  pidStart: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  /** cgroup directories this container created or joined, absolute host paths */
  cgroupPaths: string[];
  /** the subset of cgroupPaths tsrun created (and so removes) */
  cgroupCreated: string[];
  /** the freezer file that says "paused" (v1 freezer.state or v2 cgroup.freeze) */
  freezer?: string;
  hooks?: { poststart?: Hook[]; poststop?: Hook[]; startContainer?: boolean };
  /** set while create runs; a state with it whose init is gone is stopped */
  creating?: boolean;
  /** config.json's process: what exec starts from */
  process?: Process;
  /** the compiled linux.seccomp filter, applied to exec'd processes too */
  seccomp?: StoredSeccomp;
  /** linux.resources as last applied (create, then each update merged in) */
  resources?: Record<string, unknown>;
  /** the Intel RDT CLOS directory create made (removed with the container) */
  rdtDir?: string;
}

export interface StoredSeccomp {
  /** sock_filter[], base64 */
  program: string;
  flags: number;
  notify: boolean;
  listenerPath?: string;
  listenerMetadata?: string;
}

/** The OCI state JSON (runtime.md) plus runc's extras. */
export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

const ID_RE = /^[\w+\-.]+$/;

export function validateId(id: string): void {
  if (!ID_RE.test(id) || id === '.' || id === '..' || id.length > 1024) {
    throw new TsrunError(`invalid container id format: ${JSON.stringify(id)}`);
  }
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }
  file(id: string): string {
    return join(this.root, id, 'state.json');
  }
  fifo(id: string): string {
    return join(this.root, id, 'exec.fifo');
  }

  ensureRoot(): void {
    try {
      mkdirSync(this.root, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw sysError(`create state root ${this.root}`, e);
    }
  }

  /** Reserve the container's directory; fails if the id exists. */
  reserve(id: string): void {
    this.ensureRoot();
    try {
      mkdirSync(this.dir(id), { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new TsrunError(`container with id exists: ${id}`);
      }
      throw sysError(`create state dir ${this.dir(id)}`, e);
    }
  }

  exists(id: string): boolean {
    return existsSync(this.file(id));
  }

  load(id: string): StoredState {
    validateId(id);
    let text: string;
    try {
      text = readFileSync(this.file(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new TsrunError(`container does not exist`);
      }
      throw sysError(`read state of ${id}`, e);
    }
    try {
      return JSON.parse(text) as StoredState;
    } catch (e) {
      throw new TsrunError(`state of ${id} is corrupt (${this.file(id)}): ${(e as Error).message}`);
    }
  }

  save(st: StoredState): void {
    writeAtomic(this.file(st.id), JSON.stringify(st));
  }

  /** Atomically take the container away (rename), then remove the files:
   * a concurrent verb sees "does not exist", never a half-removed dir. */
  remove(id: string): void {
    const tomb = join(this.root, `${TOMB}${id}-${process.pid}`);
    try {
      renameSync(this.dir(id), tomb);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw sysError(`remove state of ${id}`, e);
    }
    // a state dir holds a few plain files: unlink them and rmdir, instead of
    // rmSync's recursive walk (Node's JS rimraf: ~2.5 ms of every delete)
    try {
      for (const f of readdirSync(tomb)) unlinkSync(join(tomb, f));
      rmdirSync(tomb);
    } catch {
      rmSync(tomb, { recursive: true, force: true });
    }
  }

  /**
   * What a remove killed between its rename and its unlinks left of ID: the
   * renamed dirs of removers that are gone (a live one is still at work).
   */
  sweepRemoved(id: string, alive: (pid: number) => boolean = pidAlive): void {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    const prefix = `${TOMB}${id}-`;
    for (const n of names) {
      const pid = n.startsWith(prefix) ? n.slice(prefix.length) : '';
      if (!/^\d+$/.test(pid) || alive(Number(pid))) continue;
      rmSync(join(this.root, n), { recursive: true, force: true });
    }
  }

  list(): string[] {
    try {
      return readdirSync(this.root).filter((n) => ID_RE.test(n) && existsSync(this.file(n))).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw sysError(`list ${this.root}`, e);
    }
  }

  /**
   * Per-container lock: an O_EXCL file holding "pid starttime" of the
   * holder. A lock whose holder is gone is taken over (renamed away first so
   * two takers cannot both win). Waits up to timeoutMs.
   */
  lock(id: string, timeoutMs = 10_000): () => void {
    const path = join(this.dir(id), 'lock');
    const me = `${process.pid} ${procStartTime(process.pid) ?? 0}`;
    const deadline = Date.now() + timeoutMs;
    // written whole, then linked into place: a holder killed half-way
    // leaves no empty lock that nobody could tell stale (it blocked delete)
    const mine = `${path}.${process.pid}`;
    for (;;) {
      try {
        writeFileSync(mine, me, { mode: 0o600 });
        try {
          linkSync(mine, path);
        } finally {
          unlinkSync(mine);
        }
        return () => {
          try {
            unlinkSync(path);
          } catch {
            /* the dir may be gone with the container */
          }
        };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new TsrunError('container does not exist');
        if (code !== 'EEXIST') throw sysError(`lock ${id}`, e);
      }
      let holder = '';
      try {
        holder = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      const [pid, start] = holder.split(' ').map(Number);
      if (pid && procStartTime(pid) !== start) {
        // stale: its holder died (kill -9). Move it aside atomically.
        try {
          renameSync(path, `${path}.stale.${process.pid}`);
          rmSync(`${path}.stale.${process.pid}`, { force: true });
        } catch {
          /* someone else took it over first */
        }
        continue;
      }
      if (Date.now() > deadline) throw new TsrunError(`container ${id} is locked by pid ${pid}`);
      sleep(2);
    }
  }
}

export function writeAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.tmp.${process.pid}`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw sysError(`write ${path}`, e);
  }
}


export interface ProcStat {
  state: string;
  ppid: number;
  startTime: number;
}

/**
 * new Date(ms).toISOString() without Date: its first toISOString() costs
 * ~0.8 ms here (measured), a create's state needs one. Days to civil date
 * after H. Hinnant's days_from_civil inverse.
 */
export function isoTime(ms = Date.now()): string {
  const days = Math.floor(ms / 86_400_000);
  const t = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const p = (v: number, n = 2) => String(v).padStart(n, '0');
  return `${p(y, 4)}-${p(m)}-${p(d)}T${p(Math.floor(t / 3_600_000))}:${p(Math.floor(t / 60_000) % 60)}:${p(Math.floor(t / 1000) % 60)}.${p(t % 1000, 3)}Z`;
}

const statBuf = Buffer.allocUnsafe(1024);

/** Fields of /proc/<pid>/stat that matter here, or null if there is no such process. */
export function procStat(pid: number): ProcStat | null {
  // one open/read/close into a reused buffer (readFileSync also fstat()s and
  // reads twice: procfs files report size 0)
  let s: string;
  let fd = -1;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
    const n = readSync(fd, statBuf, 0, statBuf.length, null);
    s = statBuf.toString('latin1', 0, n);
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  // comm may contain spaces and parens: split after the last ')'
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

export function procStartTime(pid: number): number | undefined {
  return procStat(pid)?.startTime;
}

/** Is the recorded init still the same live (non-zombie) process? */
export function initAlive(st: StoredState): boolean {
  if (!st.pid) return false;
  const ps = procStat(st.pid);
  if (!ps || ps.startTime !== st.pidStart) return false;
  return ps.state !== 'Z' && ps.state !== 'X' && ps.state !== 'x';
}

export function deriveStatus(store: StateStore, st: StoredState): Status {
  if (!initAlive(st)) return 'stopped';
  if (st.creating) return 'creating';
  if (existsSync(store.fifo(st.id))) return 'created';
  if (st.freezer && isFrozenFile(st.freezer)) return 'paused';
  return 'running';
}

export function ociState(store: StateStore, st: StoredState, status = deriveStatus(store, st)): OciState {
  const o: OciState = {
    ociVersion: st.ociVersion,
    id: st.id,
    pid: status === 'stopped' ? 0 : st.pid,
    status,
    bundle: st.bundle,
    rootfs: st.rootfs,
    created: st.created,
    owner: st.owner,
  };
  if (st.annotations && Object.keys(st.annotations).length) o.annotations = st.annotations;
  return o;
}

/** A directory (after symlinks)? access("p/.") fails with ENOTDIR/ENOENT otherwise:
 * one syscall, without building a Stats object (statSync costs ~0.7 ms on first use). */
export function isDir(p: string): boolean {
  return existsSync(p.endsWith('/') ? `${p}.` : `${p}/.`);
}
