// The rootfs part of the launch plan: config.json's mounts (resolved, with
// their flags, idmaps and the cgroup mount expanded per hierarchy) and /dev's
// device nodes and links. Pure: host facts are passed in.
import { isAbsolute, resolve } from 'node:path';
import { TsrunError } from '../errors';
import type { Device, Mount, Spec } from '../spec/types';
import { NAMESPACES } from '../spec/tables';
import type { HostFacts, PlanDevice, PlanMount, PlanOptions } from './index';
import { MS, parseMountOptions, type ParsedOptions } from './mounts';

import { TM } from '../protocol/abi';

export { TM };

export function idMap(maps: { containerID: number; hostID: number; size: number }[] | undefined): string | undefined {
  if (!maps?.length) return undefined;
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

export function cleanDest(d: string): string {
  // lexical clean only; the stage resolves inside the rootfs, symlinks included
  const parts: string[] = [];
  for (const p of d.split('/')) {
    if (!p || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

/**
 * A read-only mount that more gets built in (a ro /dev tmpfs: /dev/pts, the
 * devices, the links; or any mount with mounts below it) is mounted writable
 * and made read-only once the rootfs is done, as runc does for /dev.
 */
function deferReadonly(mounts: PlanMount[]): void {
  for (const [i, m] of mounts.entries()) {
    if (!(m.flags & MS.RDONLY) || m.extra & TM.BIND) continue;
    const under = m.destination === '/' ? '/' : m.destination + '/';
    // a read-only tmpfs that is copied up into is filled first, too
    if (!(m.extra & (TM.DEV | TM.COPYUP)) && !mounts.slice(i + 1).some((n) => n.destination.startsWith(under))) continue;
    m.flags &= ~MS.RDONLY;
    m.extra |= TM.DEFER_RO;
  }
}

const DEFAULT_DEVICES: PlanDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, mode: 0o666, uid: 0, gid: 0 },
];

interface NsFacts {
  nsJoin: { flag: number; path: string }[];
  newUser: boolean;
  cgroupNs: boolean;
}

/** A mount's idmap: its own maps, the new user namespace's, or a joined one by path. */
function planIdmap(m: Mount, o: ParsedOptions, where: string, bind: boolean, linux: NonNullable<Spec['linux']>, ns: NsFacts): PlanMount['idmap'] {
  const ownMaps = !!(m.uidMappings?.length || m.gidMappings?.length);
  if (!o.idmap && !ownMaps) return undefined;
  if (!bind) throw new TsrunError(`${where}: idmapped mounts are only supported for bind mounts`);
  const recursive = o.idmap === 2;
  if (ownMaps) return { recursive, uidMap: idMap(m.uidMappings) ?? '', gidMap: idMap(m.gidMappings) ?? '', usernsPath: '' };
  if (ns.newUser) return { recursive, uidMap: idMap(linux.uidMappings) ?? '', gidMap: idMap(linux.gidMappings) ?? '', usernsPath: '' };
  const joined = ns.nsJoin.find((j) => j.flag === NAMESPACES.user!.flag);
  if (!joined) throw new TsrunError(`${where}: option ${recursive ? 'ridmap' : 'idmap'} without uidMappings/gidMappings needs a user namespace`);
  return { recursive, uidMap: '', gidMap: '', usernsPath: joined.path };
}

/** Every mount of config.json in order; devSetup false when the config binds its own /dev. */
export function planMounts(spec: Spec, opts: PlanOptions, facts: HostFacts, ns: NsFacts): { mounts: PlanMount[]; devSetup: boolean } {
  const linux = spec.linux ?? {};
  const mounts: PlanMount[] = [];
  let devSetup = true;
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    const where = `config.json: mounts[${i}] (${m.destination})`;
    const o = parseMountOptions(m.options, where);
    const type = m.type ?? (o.bind ? 'bind' : '');
    const bind = o.bind || type === 'bind';
    const dest = cleanDest(m.destination);
    const idmap = planIdmap(m, o, where, bind, linux, ns);
    if (type === 'cgroup' && !bind) {
      mounts.push(...expandCgroupMount(m, o.flags, facts, opts, ns.cgroupNs));
      continue;
    }
    let extra = 0;
    let source = m.source ?? (bind ? '' : type);
    if (bind) {
      if (!m.source) throw new TsrunError(`${where}: a bind mount needs a source`);
      source = isAbsolute(m.source) ? m.source : resolve(opts.bundle, m.source);
      extra |= TM.BIND;
      if (!facts.isDir(source)) extra |= TM.FILE;
      if (o.flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) extra |= TM.REMOUNT_RO;
      if (dest === '/dev') devSetup = false;
    } else if (!type) {
      throw new TsrunError(`${where}: type is required for a mount that is not a bind mount`);
    }
    if (type === 'proc') extra |= TM.PROCFS;
    if (type === 'sysfs') extra |= TM.SYSFS;
    if (dest === '/dev' && type === 'tmpfs') extra |= TM.DEV;
    if (o.copyUp) {
      if (type !== 'tmpfs') throw new TsrunError(`${where}: tmpcopyup is only for tmpfs mounts`);
      extra |= TM.COPYUP;
    }
    mounts.push({
      flags: o.flags, pflags: o.pflags, attrSet: o.attrSet, attrClr: o.attrClr, extra,
      source, destination: dest, type, data: o.data.join(','), ...(idmap ? { idmap } : {}),
    });
  }
  deferReadonly(mounts);
  return { mounts, devSetup };
}

/** /dev: the default nodes (when the device setup is ours), linux.devices over them, the links. */
export function planDevices(list: Device[] | undefined, devSetup: boolean, hasKcore: boolean): { devices: PlanDevice[]; symlinks: [string, string][] } {

  const devices: PlanDevice[] = devSetup ? DEFAULT_DEVICES.map((d) => ({ ...d })) : [];
  for (const d of list ?? []) {
    const pd: PlanDevice = {
      path: cleanDest(d.path), type: d.type === 'u' ? 'c' : d.type, major: d.major ?? 0, minor: d.minor ?? 0,
      mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0,
    };
    const at = devices.findIndex((x) => x.path === pd.path);
    if (at >= 0) devices[at] = pd;
    else devices.push(pd);
  }
  const symlinks: [string, string][] = devSetup
    ? [
        ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
        ['/proc/self/fd/2', '/dev/stderr'], ['pts/ptmx', '/dev/ptmx'],
        ...(hasKcore ? [['/proc/kcore', '/dev/core'] as [string, string]] : []),
      ]
    : [];

  return { devices, symlinks };
}

function expandCgroupMount(
  m: Mount, flags: number, facts: HostFacts, opts: PlanOptions, cgroupNs: boolean,
): PlanMount[] {
  const dest = cleanDest(m.destination);
  const ro = (flags & MS.RDONLY) !== 0;
  const base = flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME | MS.NOATIME | MS.STRICTATIME);
  const out: PlanMount[] = [];
  // rootless without cgroups of its own: nothing of the host's tree to show, an empty read-only tmpfs
  if (!opts.cgroupPaths.length && !cgroupNs) {
    return [{ flags: base | MS.RDONLY, pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'tmpfs', destination: dest, type: 'tmpfs', data: 'mode=755' }];
  }
  const v1 = facts.hierarchies.filter((h) => h.version === 1);
  const v2 = facts.hierarchies.find((h) => h.version === 2);
  if (!v1.length && v2) {
    // unified only: one cgroup2 mount (namespaced) or a bind of our cgroup
    const idx = facts.hierarchies.indexOf(v2);
    out.push(cgroupNs
      ? { flags: flags & ~MS.REMOUNT, pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'cgroup2', destination: dest, type: 'cgroup2', data: '' }
      : { flags: base | MS.BIND | MS.REC | (ro ? MS.RDONLY : 0), pflags: 0, attrSet: 0, attrClr: 0, extra: TM.BIND | TM.CGROUP | TM.REMOUNT_RO, source: opts.cgroupPaths[idx]!, destination: dest, type: 'bind', data: '' });
    return out;
  }
  out.push({ flags: base, pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'tmpfs', destination: dest, type: 'tmpfs', data: 'mode=755' });
  for (const [hi, h] of facts.hierarchies.entries()) {
    const name = h.version === 2 ? 'unified' : h.controllers.map((c) => c.replace(/^name=/, '')).join(',');
    const sub = `${dest}/${name}`;
    if (cgroupNs) {
      out.push(h.version === 2
        ? { flags: base | (ro ? MS.RDONLY : 0), pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'cgroup2', destination: sub, type: 'cgroup2', data: '' }
        : { flags: base | (ro ? MS.RDONLY : 0), pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'cgroup', destination: sub, type: 'cgroup', data: h.controllers.join(',') });
    } else {
      out.push({ flags: base | MS.BIND | MS.REC | (ro ? MS.RDONLY : 0), pflags: 0, attrSet: 0, attrClr: 0, extra: TM.BIND | TM.CGROUP | TM.REMOUNT_RO, source: opts.cgroupPaths[hi]!, destination: sub, type: 'bind', data: '' });
    }
  }
  if (ro) {
    out.push({ flags: base | MS.REMOUNT | MS.RDONLY, pflags: 0, attrSet: 0, attrClr: 0, extra: TM.CGROUP, source: 'tmpfs', destination: dest, type: 'tmpfs', data: 'mode=755' });
  }
  return out;
}

