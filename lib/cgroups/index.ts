// cgroups, join-only for now: find the hierarchies mounted here (v1
// controllers, the unified one), resolve cgroupsPath the way runc does,
// create the container's directory in each, and remove what we created.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFile, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, sysError } from '../errors';
import { sleep } from '../sleep';

export interface Hierarchy {
  /** mount point on the host, e.g. /sys/fs/cgroup/memory */
  mount: string;
  version: 1 | 2;
  /** v1: controllers and name=X from the super options; v2: [] */
  controllers: string[];
  /** path of the mount's root inside the hierarchy (usually "/") */
  root: string;
}

export interface CgroupSetup {
  /** absolute directories, one per hierarchy */
  paths: string[];
  /** the directories this container created, parents first */
  created: string[];
  /** cgroup.procs files the init joins */
  procs: string[];
  /** a file that says whether the cgroup is frozen */
  freezer?: string;
  hierarchies: Hierarchy[];
  /** the container's path inside each hierarchy ("/a/b") */
  inner: string;
  /** cgroup.procs of the cgroup tsrun itself is in (first hierarchy): see warmAttach */
  ownProcs?: string;
}

const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'net_cls', 'net_prio',
  'perf_event', 'hugetlb', 'rdma', 'misc',
]);

/** The cgroup hierarchies mounted in this mount namespace, from mountinfo text. */
export function parseMountinfo(text: string): Hierarchy[] {
  const out: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mount = unescape(pre[4]!);
    const root = unescape(pre[3]!);
    const key = fstype === 'cgroup2' ? 'unified' : post[2]!;
    if (seen.has(key)) continue; // the same hierarchy mounted twice: first wins
    seen.add(key);
    if (fstype === 'cgroup2') {
      out.push({ mount, version: 2, controllers: [], root });
    } else {
      const opts = (post[2] ?? '').split(',');
      const controllers = opts.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
      if (controllers.length) out.push({ mount, version: 1, controllers, root });
    }
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function hostHierarchies(): Hierarchy[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** Is DIR inside hierarchy H's mount? */
export function inHierarchy(dir: string, h: Hierarchy): boolean {
  return dir === h.mount || dir.startsWith(h.mount + '/');
}

/** The hierarchy that DIR (a cgroup directory) lives in. */
export function hierarchyOf(dir: string, hier: Hierarchy[]): Hierarchy | undefined {
  return hier.find((h) => inHierarchy(dir, h));
}

/**
 * The one of a container's cgroup DIRS that holds controller CTRL: the dir in
 * its v1 hierarchy (a joint mount such as cpu,cpuacct included), else the v2
 * dir when CTRL is enabled there (ENABLED reads its cgroup.controllers).
 */
export function controllerDir(dirs: string[], ctrl: string, hier: Hierarchy[],
  enabled = (dir: string) => readFileSync(join(dir, 'cgroup.controllers'), 'utf8')): { dir: string; v2: boolean } | undefined {
  const h1 = hier.find((h) => h.version === 1 && h.controllers.includes(ctrl));
  const v1 = h1 && dirs.find((d) => inHierarchy(d, h1));
  if (v1) return { dir: v1, v2: false };
  const h2 = hier.find((h) => h.version === 2);
  const v2 = h2 && dirs.find((d) => inHierarchy(d, h2));
  if (!v2) return undefined;
  try {
    return enabled(v2).trim().split(/\s+/).includes(ctrl) ? { dir: v2, v2: true } : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/self/cgroup: controller list (or "" for v2) -> path */
export function ownCgroups(text = readFileSync('/proc/self/cgroup', 'utf8')): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    const j = line.indexOf(':', i + 1);
    if (i < 0 || j < 0) continue;
    m.set(line.slice(i + 1, j), line.slice(j + 1));
  }
  return m;
}

function ownPathFor(h: Hierarchy, own: Map<string, string>): string {
  if (h.version === 2) return own.get('') ?? '/';
  for (const [k, v] of own) {
    const ctrls = k.split(',');
    if (h.controllers.every((c) => ctrls.includes(c))) return v;
  }
  return '/';
}

/**
 * cgroupsPath semantics of runc's cgroupfs driver: absolute = from the
 * hierarchy root; relative = under the runtime's own cgroup; empty = the
 * container id under the runtime's own cgroup.
 */
export function resolveInner(cgroupsPath: string | undefined, id: string, own: string): string {
  const p = cgroupsPath ?? '';
  let inner: string;
  if (p === '') inner = join(own, id);
  else if (p.startsWith('/')) inner = p;
  else inner = join(own, p);
  // lexically cleaned like runc's CleanPath: ".." never climbs above the root
  inner = join('/', inner);
  if (inner === '/') {
    throw new TsrunError(`config.json: linux.cgroupsPath: ${JSON.stringify(cgroupsPath)} is the root cgroup`);
  }
  return inner;
}

/** --systemd-cgroup: refused until the driver exists (issue: rootless and systemd). */
export function systemdPath(_cgroupsPath: string | undefined, _id: string): never {
  // said as it is: the driver is not written yet, whatever this host has
  const here = existsSync('/run/systemd/private') ? 'this host runs systemd' : 'this host has no systemd at /run/systemd/private';
  throw new TsrunError(`--systemd-cgroup: the systemd cgroup driver is not implemented in this tsrun yet (${here}); use cgroupfs paths without the flag`);
}

/** Plan the container's cgroup directories (no side effects). */
export function planCgroups(cgroupsPath: string | undefined, id: string, hier = hostHierarchies(), own = ownCgroups()): CgroupSetup {
  const inner = resolveInner(cgroupsPath, id, '/');
  const paths: string[] = [];
  const procs: string[] = [];
  let freezer: string | undefined;
  let ownProcs: string | undefined;
  // a mount whose root is not "/" (inside a cgroup namespace) sees paths below it
  const inMount = (h: Hierarchy, rel: string) => (h.root !== '/' && rel.startsWith(h.root) ? rel.slice(h.root.length) : rel);
  for (const h of hier) {
    const mine = ownPathFor(h, own);
    ownProcs ??= join(h.mount, inMount(h, mine), 'cgroup.procs');
    const base = cgroupsPath?.startsWith('/') ? '/' : mine;
    const rel = cgroupsPath?.startsWith('/') ? inner : resolveInner(cgroupsPath, id, base);
    const dir = join(h.mount, inMount(h, rel));
    paths.push(dir);
    procs.push(join(dir, 'cgroup.procs'));
    if (h.version === 1 && h.controllers.includes('freezer')) freezer = join(dir, 'freezer.state');
  }
  if (!freezer) {
    const v2 = hier.findIndex((h) => h.version === 2);
    if (v2 >= 0) freezer = join(paths[v2]!, 'cgroup.freeze');
  }
  return { paths, created: [], procs, freezer, hierarchies: hier, inner, ownProcs };
}

/**
 * Moving a process between cgroups takes the kernel's global threadgroup
 * rwsem for writing, and the first such write after a quiet spell waits for
 * an RCU grace period (~5-7 ms measured here; later writes take ~20 us). The
 * init's joins are on create's critical path, so tsrun writes its own pid to
 * its own cgroup (a move to where it already is) on a pool thread as soon as
 * it knows the cgroups: the grace period passes while the plan is built and
 * the stage's joins find the lock warm. It holds cgroup_mutex meanwhile, so
 * it is started after tsrun's own cgroup writes. Only latency rides on it: any error
 * is ignored, and on a kernel that skips the grace period it costs ~20 us.
 */
export function warmAttach(s: CgroupSetup): void {
  if (!s.ownProcs) return;
  writeFile(s.ownProcs, String(process.pid), () => {});
}

/**
 * Whether the container's cgroup is frozen before anything joined it (a
 * leftover, or a frozen parent): an init joining it would never answer.
 * v1 freezer.state says FROZEN/FREEZING for a frozen ancestor too; on v2,
 * cgroup.events' "frozen" does.
 */
export function frozenBeforeStart(s: CgroupSetup): boolean {
  if (!s.freezer) return false;
  try {
    if (s.freezer.endsWith('cgroup.freeze')) {
      const ev = readFileSync(join(s.freezer, '..', 'cgroup.events'), 'utf8');
      return /^frozen 1$/m.test(ev) || readFileSync(s.freezer, 'utf8').trim() === '1';
    }
    return readFileSync(s.freezer, 'utf8').trim() !== 'THAWED';
  } catch {
    return false;
  }
}

/** The directories of DIR's path that do not exist yet, parents first. */
function missingDirs(h: Hierarchy, dir: string): string[] {
  const made: string[] = [];
  let d = dir;
  while (!existsSync(d) && d.length > h.mount.length) {
    made.unshift(d);
    d = join(d, '..');
  }
  return made;
}

/** What createCgroups is about to make: written into the state first, so that a kill -9 leaves nothing delete cannot find. */
export function cgroupsToCreate(s: CgroupSetup): string[] {
  return s.paths.flatMap((dir, i) => missingDirs(s.hierarchies[i]!, dir));
}

/** Create every directory (recording which we made) and prepare cpuset. */
export function createCgroups(s: CgroupSetup): void {
  for (const [i, dir] of s.paths.entries()) {
    const h = s.hierarchies[i]!;
    for (const m of missingDirs(h, dir)) {
      try {
        mkdirSync(m);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw sysError(`create cgroup ${m}`, e);
      }
      s.created.push(m);
    }
    // every empty level, ours or not (a kubelet's pod cgroup made just before us), top down
    if (h.version === 1 && h.controllers.includes('cpuset')) {
      const rel = dir.slice(h.mount.length).split('/').filter(Boolean);
      for (let k = 1; k <= rel.length; k++) inheritCpuset(join(h.mount, ...rel.slice(0, k)));
    }
    if (h.version === 2) enableSubtree(h.mount, dir);
  }
}

// v2: a controller is usable in a cgroup only if every ancestor delegates it
// (cgroup.subtree_control). Enable what each level has, from the top down.
function enableSubtree(mount: string, leaf: string): void {
  const rel = leaf.slice(mount.length).split('/').filter(Boolean);
  let d = mount;
  for (const part of rel) {
    try {
      const avail = readFileSync(join(d, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
      const on = readFileSync(join(d, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
      // one at a time: a write naming a controller the level refuses enables none of the others
      for (const c of avail.filter((x) => !on.includes(x))) {
        try {
          writeFileSync(join(d, 'cgroup.subtree_control'), `+${c}`);
        } catch {
          /* refused at this level: the limits that need it will say so */
        }
      }
    } catch {
      /* a level we may not read (not ours): the limits will say so */
    }
    d = join(d, part);
  }
}

// A new v1 cpuset cgroup starts with empty cpus/mems: nothing can join it.
function inheritCpuset(dir: string): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const cur = readFileSync(join(dir, f), 'utf8').trim();
    if (cur) continue;
    const parent = readFileSync(join(dir, '..', f), 'utf8').trim();
    try {
      writeFileSync(join(dir, f), parent);
    } catch (e) {
      throw sysError(`write ${join(dir, f)}`, e);
    }
  }
}

/** Remove the directories we created, children first; retry while busy. */
// A killed process can take seconds to leave its cgroup (an OOM victim
// freeing its memory under emulation took over 2 s in the v2 VM test): a busy
// leaf is waited for this long before delete reports it.
const BUSY_LEAF_WAIT_MS = 10000;

export function destroyCgroups(created: string[], timeoutMs = BUSY_LEAF_WAIT_MS): string[] {
  const failed: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const dir of [...created].sort((a, b) => b.length - a.length)) {
    for (;;) {
      try {
        rmdirSync(dir);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // a parent other containers still use stays; the leaf may be busy
        // for a moment while its last processes exit
        if (code === 'EBUSY' && Date.now() < deadline && isLeaf(dir, created)) {
          sleep(5);
          continue;
        }
        if (code === 'EBUSY' || code === 'ENOTEMPTY') {
          if (isLeaf(dir, created)) failed.push(dir);
          break;
        }
        failed.push(dir);
        break;
      }
    }
  }
  return failed;
}

function isLeaf(dir: string, created: string[]): boolean {
  return !created.some((c) => c !== dir && c.startsWith(dir + '/'));
}

/** Pids in the container's cgroup (host view), from any hierarchy that has them. */
export function cgroupPids(paths: string[]): number[] {
  for (const p of paths) {
    try {
      const text = readFileSync(join(p, 'cgroup.procs'), 'utf8');
      return text.split('\n').filter(Boolean).map(Number);
    } catch {
      /* try the next hierarchy */
    }
  }
  return [];
}
