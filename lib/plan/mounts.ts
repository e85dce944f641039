// Mount options of the spec's table -> mount(2) flags, propagation,
// mount_setattr attributes and the filesystem data string. Pure.
import { TsrunError } from '../errors';

export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20,
  MANDLOCK: 0x40, DIRSYNC: 0x80, NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800,
  BIND: 0x1000, MOVE: 0x2000, REC: 0x4000, SILENT: 0x8000, UNBINDABLE: 0x20000,
  PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000, STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

export const ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME_MASK: 0x70, RELATIME: 0x0, NOATIME: 0x10,
  STRICTATIME: 0x20, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000,
} as const;

const SET: Record<string, number> = {
  ro: MS.RDONLY, nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, sync: MS.SYNCHRONOUS,
  remount: MS.REMOUNT, mand: MS.MANDLOCK, dirsync: MS.DIRSYNC, noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME, relatime: MS.RELATIME, strictatime: MS.STRICTATIME, lazytime: MS.LAZYTIME,
  bind: MS.BIND, rbind: MS.BIND | MS.REC, nosymfollow: MS.NOSYMFOLLOW,
};
const CLEAR: Record<string, number> = {
  rw: MS.RDONLY, suid: MS.NOSUID, dev: MS.NODEV, exec: MS.NOEXEC, async: MS.SYNCHRONOUS,
  nomand: MS.MANDLOCK, atime: MS.NOATIME, diratime: MS.NODIRATIME, norelatime: MS.RELATIME,
  nostrictatime: MS.STRICTATIME, nolazytime: MS.LAZYTIME, symfollow: MS.NOSYMFOLLOW,
};
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};
const RATTR: Record<string, { set?: number; clr?: number }> = {
  rro: { set: ATTR.RDONLY }, rrw: { clr: ATTR.RDONLY },
  rnosuid: { set: ATTR.NOSUID }, rsuid: { clr: ATTR.NOSUID },
  rnodev: { set: ATTR.NODEV }, rdev: { clr: ATTR.NODEV },
  rnoexec: { set: ATTR.NOEXEC }, rexec: { clr: ATTR.NOEXEC },
  rnodiratime: { set: ATTR.NODIRATIME }, rdiratime: { clr: ATTR.NODIRATIME },
  rrelatime: { set: ATTR.RELATIME, clr: ATTR.ATIME_MASK },
  rnorelatime: { clr: ATTR.ATIME_MASK },
  rnoatime: { set: ATTR.NOATIME, clr: ATTR.ATIME_MASK },
  ratime: { clr: ATTR.ATIME_MASK },
  rstrictatime: { set: ATTR.STRICTATIME, clr: ATTR.ATIME_MASK },
  rnostrictatime: { clr: ATTR.ATIME_MASK },
  rnosymfollow: { set: ATTR.NOSYMFOLLOW }, rsymfollow: { clr: ATTR.NOSYMFOLLOW },
};

/** Every option parseMountOptions knows (features.mountOptions): one table, not two. */
export const MOUNT_OPTIONS: readonly string[] = [
  ...[...Object.keys(SET), ...Object.keys(CLEAR), ...Object.keys(PROPAGATION), ...Object.keys(RATTR), 'defaults'].sort(),
  'idmap', 'ridmap', 'tmpcopyup',
];

export interface ParsedOptions {
  flags: number;
  pflags: number;
  attrSet: number;
  attrClr: number;
  data: string[];
  bind: boolean;
  /** idmap / ridmap: 0 none, 1 this mount, 2 recursive */
  idmap: 0 | 1 | 2;
  /** tmpcopyup: a tmpfs gets what the directory held */
  copyUp: boolean;
}

export function parseMountOptions(options: string[] | undefined, where: string): ParsedOptions {
  const r: ParsedOptions = { flags: 0, pflags: 0, attrSet: 0, attrClr: 0, data: [], bind: false, idmap: 0, copyUp: false };
  for (const o of options ?? []) {
    if (o in SET) {
      r.flags |= SET[o]!;
      if (o === 'bind' || o === 'rbind') r.bind = true;
    } else if (o in CLEAR) {
      r.flags &= ~CLEAR[o]!;
    } else if (o in PROPAGATION) {
      r.pflags = PROPAGATION[o]!;
    } else if (o in RATTR) {
      const a = RATTR[o]!;
      if (a.clr) {
        r.attrClr |= a.clr;
        r.attrSet &= ~a.clr;
      }
      if (a.set) r.attrSet |= a.set;
    } else if (o === 'defaults') {
      /* nothing */
    } else if (o === 'tmpcopyup') {
      r.copyUp = true;
    } else if (o === 'idmap' || o === 'ridmap') {
      r.idmap = o === 'ridmap' ? 2 : Math.max(r.idmap, 1) as 1 | 2;
    } else if (o === '' || /[,\0]/.test(o)) {
      throw new TsrunError(`${where}: invalid mount option ${JSON.stringify(o)}`);
    } else {
      r.data.push(o);
    }
  }
  return r;
}

/** linux.rootfsPropagation as mount flags; 0 when not given (the stage's rslave default, applied once). */
export function rootPropagation(p: string | undefined): number {
  if (!p) return 0;
  const v = PROPAGATION[p];
  if (v === undefined) throw new TsrunError(`config.json: linux.rootfsPropagation: unknown propagation ${JSON.stringify(p)}`);
  return v;
}
