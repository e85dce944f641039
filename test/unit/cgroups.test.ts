// Which of a container's cgroup dirs holds a controller: one mapping for
// events, exec --cgroup and update. Pure: hierarchies and files are given.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controllerDir, hierarchyOf, parseMountinfo, type CgroupSetup } from '../../lib/cgroups';
import { applyResources } from '../../lib/cgroups/resources';
import { ContainerCgroups, isFrozenFile } from '../../lib/cgroups/manager';

// systemd's usual v1 layout: joint cpu,cpuacct and net_cls,net_prio, plus the unified hierarchy
const hier = parseMountinfo([
  '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw',
  '31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct',
  '32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory',
  '33 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:13 - cgroup cgroup rw,net_cls,net_prio',
].join('\n'));
// a container whose own path has a component named like a controller
const dirs = ['/sys/fs/cgroup/unified/memory/c1', '/sys/fs/cgroup/cpu,cpuacct/memory/c1', '/sys/fs/cgroup/memory/memory/c1', '/sys/fs/cgroup/net_cls,net_prio/memory/c1'];
const none = () => '';

t.test('a joint v1 mount holds each of its controllers', async (t) => {
  t.same(controllerDir(dirs, 'cpu', hier, none), { dir: '/sys/fs/cgroup/cpu,cpuacct/memory/c1', v2: false });
  t.same(controllerDir(dirs, 'cpuacct', hier, none), { dir: '/sys/fs/cgroup/cpu,cpuacct/memory/c1', v2: false });
  t.same(controllerDir(dirs, 'net_prio', hier, none)?.dir, '/sys/fs/cgroup/net_cls,net_prio/memory/c1');
});

t.test('a path component named like a controller is not its hierarchy', async (t) => {
  t.same(controllerDir(dirs, 'memory', hier, none), { dir: '/sys/fs/cgroup/memory/memory/c1', v2: false });
  t.equal(controllerDir(dirs, 'pids', hier, none), undefined, 'pids is nowhere: not the unified dir that has "memory" in its path');
});

t.test('v2: the unified dir when the controller is enabled there', async (t) => {
  const seen: string[] = [];
  const enabled = (d: string) => { seen.push(d); return 'cpuset io pids\n'; };
  t.same(controllerDir(dirs, 'pids', hier, enabled), { dir: '/sys/fs/cgroup/unified/memory/c1', v2: true });
  t.same(seen, ['/sys/fs/cgroup/unified/memory/c1']);
  t.equal(controllerDir(dirs, 'hugetlb', hier, enabled), undefined);
  t.equal(controllerDir(dirs, 'pids', hier, () => { throw new Error('ENOENT'); }), undefined, 'an unreadable cgroup.controllers: not there');
});

t.test('hierarchyOf matches whole mount points only', async (t) => {
  t.equal(hierarchyOf('/sys/fs/cgroup/memory/x', hier)?.controllers.join(','), 'memory');
  t.equal(hierarchyOf('/sys/fs/cgroup/memoryX/x', hier), undefined);
});

// applyResources on temp-dir layouts: files written where a v1 or v2
// hierarchy would have them, and what a hierarchy cannot take refused.

function layout(t: { teardown(f: () => void): void }, v2Controllers: string, v1: string[]): { s: CgroupSetup; v1dir: string; v2dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'tsrun-cg-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const v1dir = join(root, 'v1', 'c');
  const v2dir = join(root, 'unified', 'c');
  mkdirSync(v1dir, { recursive: true });
  mkdirSync(v2dir, { recursive: true });
  writeFileSync(join(v2dir, 'cgroup.controllers'), v2Controllers + '\n');
  writeFileSync(join(v1dir, 'memory.limit_in_bytes'), '9223372036854771712\n');
  const s: CgroupSetup = {
    paths: [v1dir, v2dir], created: [], procs: [], inner: '/c',
    hierarchies: [
      { mount: join(root, 'v1'), version: 1, controllers: v1, root: '/' },
      { mount: join(root, 'unified'), version: 2, controllers: [], root: '/' },
    ],
  };
  return { s, v1dir, v2dir };
}
const read = (d: string, f: string) => readFileSync(join(d, f), 'utf8');

t.test('v2 memory: limit, swap as swap alone, and no v1-only setting', async (t) => {
  const { s, v2dir } = layout(t, 'memory pids', []);
  applyResources(s, { memory: { limit: 100 << 20, swap: 150 << 20 } });
  t.equal(read(v2dir, 'memory.max'), String(100 << 20));
  t.equal(read(v2dir, 'memory.swap.max'), String(50 << 20), 'memsw 150M - limit 100M');
  for (const k of ['swappiness', 'kernel', 'kernelTCP']) {
    t.throws(() => applyResources(s, { memory: { [k]: 10 } }), new RegExp(`memory\\.${k}: not supported on cgroup v2`), `${k} refused on v2`);
  }
  t.throws(() => applyResources(s, { memory: { useHierarchy: false } }), /useHierarchy: false is not supported on cgroup v2/);
  t.doesNotThrow(() => applyResources(s, { memory: { useHierarchy: true } }), 'true is what v2 is');
});

t.test('v1 memory: a setting whose file this kernel lacks is refused, not skipped', async (t) => {
  const { s, v1dir } = layout(t, '', ['memory']);
  t.throws(() => applyResources(s, { memory: { kernel: 1 << 20 } }), /memory\.kernel: this host's memory controller has no memory\.kmem\.limit_in_bytes/);
  t.throws(() => applyResources(s, { memory: { kernelTCP: 1 << 20 } }), /memory\.kernelTCP: .* no memory\.kmem\.tcp\.limit_in_bytes/);
  t.throws(() => applyResources(s, { memory: { useHierarchy: true } }), /no memory\.use_hierarchy/);
  writeFileSync(join(v1dir, 'memory.kmem.limit_in_bytes'), '0');
  applyResources(s, { memory: { kernel: 1 << 20, swappiness: 5 } });
  t.equal(read(v1dir, 'memory.kmem.limit_in_bytes'), String(1 << 20));
  t.equal(read(v1dir, 'memory.swappiness'), '5');
});

t.test('pids: 0 is a real limit on v1 and v2 (spec 1.3), -1 unlimited; a controller nowhere is an error', async (t) => {
  const a = layout(t, '', ['pids']);
  applyResources(a.s, { pids: { limit: 0 } });
  t.equal(read(a.v1dir, 'pids.max'), '0');
  applyResources(a.s, { pids: { limit: -1 } });
  t.equal(read(a.v1dir, 'pids.max'), 'max');
  const b = layout(t, 'pids', []);
  applyResources(b.s, { pids: { limit: 0 } });
  t.equal(read(b.v2dir, 'pids.max'), '0');
  t.throws(() => applyResources(b.s, { hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }), /the hugetlb cgroup controller is not available on this host/);
});

t.test('ContainerCgroups on temp dirs: freeze and thaw (v1 and v2 files), pids, destroy removes what the container made', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tsrun-cgm-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const v2 = join(root, 'unified', 'pod', 'c');
  mkdirSync(v2, { recursive: true });
  writeFileSync(join(v2, 'cgroup.procs'), '');
  writeFileSync(join(v2, 'cgroup.freeze'), '0');
  writeFileSync(join(v2, 'cgroup.events'), 'populated 0\nfrozen 1\n'); // what the kernel says once frozen
  const cg = new ContainerCgroups([v2], join(v2, 'cgroup.freeze'), [join(root, 'unified', 'pod'), v2]);
  t.notOk(cg.frozen());
  cg.setFrozen(true);
  t.equal(readFileSync(join(v2, 'cgroup.freeze'), 'utf8'), '1');
  t.ok(cg.frozen());
  cg.thawQuietly();
  t.equal(readFileSync(join(v2, 'cgroup.freeze'), 'utf8'), '0');
  t.same(cg.pids(), []);
  cg.signalAll(0); // nothing to signal, nothing frozen for it
  t.equal(readFileSync(join(v2, 'cgroup.freeze'), 'utf8'), '0');

  const v1 = join(root, 'freezer', 'c');
  mkdirSync(v1, { recursive: true });
  writeFileSync(join(v1, 'freezer.state'), 'THAWED');
  const c1 = new ContainerCgroups([v1], join(v1, 'freezer.state'), []);
  c1.setFrozen(true);
  t.equal(readFileSync(join(v1, 'freezer.state'), 'utf8'), 'FROZEN');
  t.ok(isFrozenFile(join(v1, 'freezer.state')));
  t.throws(() => new ContainerCgroups([v1], undefined, []).setFrozen(true), /no freezer cgroup/);

  rmSync(join(v2, 'cgroup.procs'));
  for (const f of ['cgroup.freeze', 'cgroup.events']) rmSync(join(v2, f));
  t.same(cg.destroy(), [], 'nothing busy');
  t.notOk(existsSync(join(root, 'unified', 'pod')), 'the leaf and the parent it made are gone, deepest first');
});

t.test('hugepageLimits: the reservation limit too where the kernel has the rsvd files', async (t) => {
  const { s, v2dir } = layout(t, 'hugetlb', []);
  writeFileSync(join(v2dir, 'hugetlb.2MB.max'), 'max');
  applyResources(s, { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] });
  t.equal(read(v2dir, 'hugetlb.2MB.max'), String(4 << 20));
  t.notOk(existsSync(join(v2dir, 'hugetlb.2MB.rsvd.max')), 'no rsvd file made where the kernel has none');
  writeFileSync(join(v2dir, 'hugetlb.2MB.rsvd.max'), 'max');
  applyResources(s, { hugepageLimits: [{ pageSize: '2MB', limit: 6 << 20 }] });
  t.equal(read(v2dir, 'hugetlb.2MB.rsvd.max'), String(6 << 20));
  t.throws(() => applyResources(s, { hugepageLimits: [{ pageSize: '1GB', limit: 1 }] }), /page size 1GB is not supported by this host/);
});

t.test('update merges into what was applied before, section by section', async (t) => {
  const { mergeResources } = require('../../lib/runtime/update') as typeof import('../../lib/runtime/update');
  const saved = { memory: { limit: 100, swap: 200 }, devices: [{ allow: false, access: 'rwm' }], pids: { limit: 5 } };
  t.same(mergeResources(saved, { memory: { swap: 300 } }), { memory: { limit: 100, swap: 300 } }, 'a lone swap keeps the limit it adds to');
  t.same(mergeResources(saved, { devices: [{ allow: true, access: 'r' }] as unknown as Record<string, unknown> }), { devices: [{ allow: true, access: 'r' }] }, 'lists replace');
  t.same(mergeResources(undefined, { cpu: { burst: 10 } }), { cpu: { burst: 10 } });
  t.same(mergeResources(saved, { memory: { limit: -1 } }), { memory: { limit: -1, swap: -1 } }, 'an unlimited memory without a swap lifts the saved swap limit (runc)');
});

t.test('stats parsers: io.stat and blkio lines, /proc/net/dev, cpu lists', async (t) => {
  const { blkioStats, cpuList, networkInterfaces } = require('../../lib/runtime/stats') as typeof import('../../lib/runtime/stats');
  const root = mkdtempSync(join(tmpdir(), 'tsrun-st-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'io.stat'), '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n');
  const v2 = blkioStats({ dir: root, v2: true });
  t.same(v2.ioServiceBytesRecursive, [{ major: 8, minor: 0, op: 'Read', value: 4096 }, { major: 8, minor: 0, op: 'Write', value: 8192 }]);
  t.same(v2.ioServicedRecursive![1], { major: 8, minor: 0, op: 'Write', value: 2 });
  writeFileSync(join(root, 'blkio.throttle.io_service_bytes_recursive'), '8:0 Read 10\n8:0 Write 20\nTotal 30\n');
  t.same(blkioStats({ dir: root, v2: false }).ioServiceBytesRecursive, [{ major: 8, minor: 0, op: 'Read', value: 10 }, { major: 8, minor: 0, op: 'Write', value: 20 }], 'the Total line is not a device');
  const dev = 'Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    5000      50    1    2    0     0          0         0     6000      60    3    4    0     0       0          0\n';
  t.same(networkInterfaces(dev), [{ Name: 'eth0', RxBytes: 5000, RxPackets: 50, RxErrors: 1, RxDropped: 2, TxBytes: 6000, TxPackets: 60, TxErrors: 3, TxDropped: 4 }]);
  t.same(cpuList('0-2,5'), [0, 1, 2, 5]);
  t.same(cpuList(''), []);
});
