// Pure modules, no root: the CLI parser, mount options, the plan builder,
// the plan encoding, schema validation, cgroup path logic, signals.
import t from 'tap';
import { join } from 'node:path';
import { fastParse } from '../../lib/cli/commands';
import { parseMountOptions, MS, ATTR } from '../../lib/plan/mounts';
import { buildPlan, TM, type HostFacts } from '../../lib/plan';
import { encodePlan, decodeFrame, encodeFrame, M, T, ABI_VERSION } from '../../lib/protocol';
import { parseSpec, checkSpec, jsonPath, type Validator } from '../../lib/spec';
import { parseMountinfo, resolveInner, planCgroups } from '../../lib/cgroups';
import { parseSignal, signalName } from '../../lib/runtime/signals';
import { isoTime } from '../../lib/state';
import { defaultSpec } from '../../lib/runtime/spec';
import type { Spec } from '../../lib/spec/types';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const validate = require(join(__dirname, '..', '..', 'lib', '_build', 'validators.cjs')).config as Validator;

t.test('fast parser: runc forms', async (t) => {
  const p = fastParse(['--root', '/r', '--log=/l', '--log-format', 'json', 'create', '-b', '/b', '--pid-file=/p', 'id1'])!;
  t.same(p.globals.root, '/r');
  t.same(p.globals.log, '/l');
  t.same(p.globals.logFormat, 'json');
  t.same(p.verb, 'create');
  t.same(p.flags.bundle, '/b');
  t.same(p.flags.pidFile, '/p');
  t.same(p.args, ['id1']);
  t.same(fastParse(['kill', '--all', 'x', '9'])!.args, ['x', '9']);
  t.same(fastParse(['kill', 'x'])!.flags.all, undefined);
  t.equal(fastParse(['create', '--preserve-fds', 'abc', 'x']), null, 'bad number');
  t.equal(fastParse(['create', '--nope', 'x']), null, 'unknown flag');
  t.equal(fastParse(['state']), null, 'missing id');
  t.equal(fastParse(['state', 'a', 'b']), null, 'extra arg');
  t.equal(fastParse(['--help']), null);
  t.equal(fastParse(['bogus']), null);
  t.same(fastParse(['delete', '-f', 'x'])!.flags.force, true);
  t.same(fastParse(['create', 'x'])!.flags.bundle, '.', 'default bundle');
  t.same(fastParse(['create', '--debug', 'x'])!.globals.debug, true, 'global after the verb');
});

t.test('mount options', async (t) => {
  const o = parseMountOptions(['rbind', 'ro', 'nosuid', 'rslave', 'size=1m', 'rnoexec', 'rw'], 'm');
  t.equal(o.flags, MS.BIND | MS.REC | MS.NOSUID);
  t.equal(o.pflags, MS.SLAVE | MS.REC);
  t.equal(o.attrSet, ATTR.NOEXEC);
  t.same(o.data, ['size=1m']);
  t.ok(o.bind);
  t.equal(parseMountOptions(['rnoatime', 'rrelatime'], 'm').attrSet, ATTR.RELATIME);
  t.equal(parseMountOptions(['idmap'], 'm').idmap, 1);
  t.equal(parseMountOptions(['rbind', 'ridmap'], 'm').idmap, 2);
  t.equal(parseMountOptions(['ro'], 'm').idmap, 0);
});

const facts: HostFacts = { lastCap: 40, hasKcore: false, isDir: () => true, hierarchies: [] };
const base = (): Spec => {
  const s = defaultSpec(false);
  s.process!.terminal = false;
  return s;
};

t.test('tsrun spec writes what runc spec writes: no cgroup namespace (a config adding one must not be a duplicate)', async (t) => {
  // runc 1.1 spec / spec --rootless namespaces, in order
  t.same(defaultSpec(false).linux!.namespaces!.map((n) => n.type), ['pid', 'network', 'ipc', 'uts', 'mount']);
  t.same(defaultSpec(true).linux!.namespaces!.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'user']);
  t.same(defaultSpec(false).process!.capabilities!.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  t.equal(defaultSpec(false).hostname, 'tsrun');
});

t.test('plan: a ro mount with mounts below it (a ro /dev) is made read-only last', async (t) => {
  const s = base();
  s.mounts = [
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'ro'] },
    { destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['ro'] },
    { destination: '/x/y', type: 'tmpfs', source: 'tmpfs' },
    { destination: '/z', type: 'tmpfs', source: 'tmpfs', options: ['ro'] },
  ];
  const p = buildPlan(s, { id: 'x', bundle: '/b', noPivot: false, noNewKeyring: false, preserveFds: 0, cgroupProcs: [], cgroupPaths: [], warn: () => {} }, facts);
  const by = (d: string) => p.mounts.find((m) => m.destination === d)!;
  for (const d of ['/dev', '/x']) {
    t.ok(by(d).extra & TM.DEFER_RO, `${d}: deferred`);
    t.notOk(by(d).flags & 1, `${d}: mounted writable first`);
  }
  t.notOk(by('/z').extra & TM.DEFER_RO, 'a ro mount with nothing below stays ro from the start');
  t.ok(by('/z').flags & 1);
});

t.test('plan: namespaces, maps, caps, rlimits, devices', async (t) => {
  const s = base();
  s.linux!.namespaces!.push({ type: 'user' }, { type: 'time' });
  s.linux!.namespaces![1] = { type: 'network', path: '/proc/1/ns/net' };
  s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 10 }];
  s.linux!.gidMappings = [{ containerID: 0, hostID: 2000, size: 10 }];
  s.linux!.timeOffsets = { monotonic: { secs: 5, nanosecs: 1 } };
  s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 18446744073709551615 }];
  s.linux!.devices = [{ type: 'u', path: '/dev/fuse', major: 10, minor: 229 }];
  const warns: string[] = [];
  const p = buildPlan(s, { id: 'x', bundle: '/b', noPivot: false, noNewKeyring: false, preserveFds: 0, cgroupProcs: [], cgroupPaths: [], warn: (m) => warns.push(m) }, facts);
  t.equal(p.rootfs, '/b/rootfs');
  t.ok(p.nsNew & 0x10000000, 'new user ns');
  t.notOk(p.nsNew & 0x40000000, 'net joined, not new');
  t.same(p.nsJoin, [{ flag: 0x40000000, path: '/proc/1/ns/net' }]);
  t.equal(p.uidMap, '0 1000 10\n');
  t.equal(p.gidMap, '0 2000 10\n');
  t.equal(p.timensOffsets, 'monotonic 5 1\n');
  t.equal(p.rlimits[0]!.hard, (1n << 64n) - 1n, 'RLIM_INFINITY survives JSON rounding');
  t.ok(p.usernsDevices);
  t.ok(p.devices.find((d) => d.path === '/dev/fuse' && d.type === 'c' && d.major === 10));
  t.equal(p.caps![0], (1n << 29n) | (1n << 5n) | (1n << 10n), 'bounding mask');
  t.equal(p.keyring, '_ses.x');
});

t.test('plan: a bind mount at /dev turns off device setup', async (t) => {
  const s = base();
  s.mounts = [{ destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] }];
  const p = buildPlan(s, { id: 'x', bundle: '/b', noPivot: false, noNewKeyring: true, preserveFds: 0, cgroupProcs: [], cgroupPaths: [], warn() {} }, facts);
  t.notOk(p.devSetup);
  t.same(p.devices, []);
  t.equal(p.keyring, undefined);
});

t.test('plan encoding and frames', async (t) => {
  const p = buildPlan(base(), { id: 'x', bundle: '/b', noPivot: false, noNewKeyring: false, preserveFds: 0, cgroupProcs: ['/cg/cgroup.procs'], cgroupPaths: ['/cg'], warn() {} }, facts);
  const b = encodePlan(p);
  t.equal(b.readUInt32LE(0), 0x50525354);
  // the TypeScript encoder and the C stage agree: ABI, record tags, messages
  const h = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', 'native', 'include', 'tsrun.h'), 'utf8') as string;
  t.equal(b.readUInt32LE(4), Number(/#define TSRUN_ABI_VERSION (\d+)/.exec(h)![1]), 'ABI version as in tsrun.h');
  t.equal(ABI_VERSION, b.readUInt32LE(4));
  for (const [k, v] of Object.entries(T)) t.match(h, new RegExp(`\\bT_${k} = ${v},`), `T_${k}`);
  for (const [k, v] of Object.entries(M)) t.match(h, new RegExp(`\\bM_${k} = ${v},`), `M_${k}`);
  // walk records: every length fits, the first is the rootfs
  let pos = 8;
  const tags: number[] = [];
  while (pos < b.length) {
    const tag = b.readUInt16LE(pos);
    const len = b.readUInt32LE(pos + 4);
    tags.push(tag);
    pos += 8 + len;
  }
  t.equal(pos, b.length);
  t.equal(tags[0], 1);
  const f = encodeFrame(M.GO, Buffer.from('abc'));
  const d = decodeFrame(f, f.length);
  t.equal(d.type, M.GO);
  t.equal(d.payload.toString(), 'abc');
  t.throws(() => decodeFrame(f, f.length - 1));
});

t.test('plan encoding: fields in place, the buffer grows past 4 KB', async (t) => {
  const s = base();
  s.process!.env = Array.from({ length: 300 }, (_, i) => `V${i}=${'x'.repeat(i % 40)}`);
  s.process!.user = { uid: 7, gid: 8, umask: 0o27 };
  const p = buildPlan(s, { id: 'x', bundle: '/b', noPivot: false, noNewKeyring: false, preserveFds: 0, cgroupProcs: [], cgroupPaths: [], warn() {} }, facts);
  const b = encodePlan(p);
  t.ok(b.length > 8192, 'bigger than the first buffer');
  const recs: [number, Buffer][] = [];
  for (let pos = 8; pos < b.length; ) {
    t.equal(b.readUInt16LE(pos + 2), 0, 'padding after the tag is zero');
    const len = b.readUInt32LE(pos + 4);
    recs.push([b.readUInt16LE(pos), b.subarray(pos + 8, pos + 8 + len)]);
    pos += 8 + len;
  }
  const env = recs.filter(([tag]) => tag === T.ENV).map(([, r]) => r.toString('utf8', 0, r.length - 1));
  t.same(env, p.env, 'every env string, NUL-terminated, in order');
  const user = recs.find(([tag]) => tag === T.USER)![1];
  t.same([user.readUInt32LE(0), user.readUInt32LE(4), user.readInt32LE(8), user.length], [7, 8, 0o27, 12]);
  t.equal(recs[0]![1].toString(), p.rootfs + '\0');
  t.throws(() => encodePlan({ ...p, cwd: 'a\0b' }), /NUL byte/);
});

t.test('isoTime is Date.toISOString without Date', async (t) => {
  const samples = [0, 951_782_400_000 /* 2000-02-29 */, 4_107_542_399_999 /* 2100-02-28T23:59:59.999 */, 1_767_225_600_000, Date.now()];
  for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 8_000_000_000_000));
  let bad = 0;
  for (const ms of samples) if (isoTime(ms) !== new Date(ms).toISOString()) bad++;
  t.equal(bad, 0, `${samples.length} instants agree`);
});

t.test('schema validation names the JSON path and the rule', async (t) => {
  const good = JSON.stringify(base());
  t.ok(parseSpec(good, 'config.json', validate));
  const bad = base() as unknown as { process: { user: { uid: number } } };
  bad.process.user.uid = -5;
  t.throws(() => parseSpec(JSON.stringify(bad), 'config.json', validate), /config\.json: process\.user\.uid: must be >= 0 \(minimum\)/);
  t.throws(() => parseSpec('{"a":', 'config.json', validate), /invalid JSON/);
  t.equal(jsonPath('/mounts/3/options/0'), 'mounts[3].options[0]');
  const s = base();
  s.linux!.namespaces!.push({ type: 'pid' });
  t.throws(() => checkSpec(s, () => {}), /duplicate namespace type pid/);
  const w: string[] = [];
  const s2 = base();
  s2.process!.capabilities!.bounding!.push('CAP_WHAT');
  checkSpec(s2, (m) => w.push(m));
  t.match(w[0], /unknown capability "CAP_WHAT"/);
});

t.test('cgroups: mountinfo and paths', async (t) => {
  const mi = [
    '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '39 30 0:36 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
    '40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
    '50 30 0:99 / /mnt/x rw - tmpfs tmpfs rw',
  ].join('\n');
  const h = parseMountinfo(mi);
  t.same(h.map((x) => [x.mount, x.version, x.controllers]), [
    ['/sys/fs/cgroup/cpu', 1, ['cpu']], ['/sys/fs/cgroup/memory', 1, ['memory']],
    ['/sys/fs/cgroup/systemd', 1, ['name=systemd']], ['/sys/fs/cgroup/unified', 2, []],
  ]);
  t.equal(resolveInner('/a/b', 'id', '/own'), '/a/b');
  t.equal(resolveInner('a/b', 'id', '/own'), '/own/a/b');
  t.equal(resolveInner('', 'id', '/own'), '/own/id');
  t.equal(resolveInner('/../x', 'id', '/'), '/x', 'cleaned like runc');
  const own = new Map([['cpu', '/user.slice'], ['memory', '/'], ['name=systemd', '/'], ['', '/']]);
  const s = planCgroups('rel', 'id', h, own);
  t.equal(s.paths[0], '/sys/fs/cgroup/cpu/user.slice/rel');
  t.equal(s.paths[1], '/sys/fs/cgroup/memory/rel');
  t.equal(s.freezer, '/sys/fs/cgroup/unified/rel/cgroup.freeze');
});

t.test('signals', async (t) => {
  t.equal(parseSignal(undefined), 15);
  t.equal(parseSignal('KILL'), 9);
  t.equal(parseSignal('sigusr1'), 10);
  t.equal(parseSignal('9'), 9);
  t.equal(parseSignal('0'), 0, 'signal 0: does the process exist (runc kill ID 0)');
  t.equal(parseSignal('SIGRTMIN+2'), 36);
  t.throws(() => parseSignal('NOPE'), /unknown signal "NOPE"/);
  t.throws(() => parseSignal('99'), /unknown signal/);
  // the built-in table is Node's (the kernel's) for every name it knows here
  const { constants } = require('node:os') as typeof import('node:os');
  for (const [name, n] of Object.entries(constants.signals)) t.equal(parseSignal(name), n, name);
  t.equal(signalName(10), 'SIGUSR1');
});

t.test('features reports what is supported, and what is refused as not enabled', async (t) => {
  const { features } = await import('../../lib/runtime/features');
  const f = features('x') as { linux: { seccomp: { enabled: boolean }; apparmor: { enabled: boolean }; namespaces: string[] }; ociVersionMax: string; hooks: string[] };
  t.equal(f.linux.seccomp.enabled, true);
  t.equal(f.linux.apparmor.enabled, false, 'profiles are applied only where AppArmor is enabled; the build does not claim it');
  t.ok(f.linux.namespaces.includes('time'));
  t.equal(f.ociVersionMax, '1.3.0');
  t.equal(f.hooks.length, 6);
});

t.test('protocol tables: lib/protocol/abi.ts is what native/include/tsrun.h says (generated, never edited)', async (t) => {
  const r = require('node:child_process').spawnSync(process.execPath, [join(__dirname, '..', '..', 'lib', 'build', 'abi.mjs'), '--check'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(TM.DEFER_RO, 0x80, 'TM as the stage reads it');
});

t.test('memoryPolicy: mode | flags, and the node mask as set_mempolicy takes it', async (t) => {
  const { planMemoryPolicy, parseNodes } = require('../../lib/plan/mempolicy') as typeof import('../../lib/plan/mempolicy');
  t.same(parseNodes(' 0-2, 5 ,,7', 'x'), [0, 1, 2, 5, 7]);
  const b = planMemoryPolicy({ mode: 'MPOL_BIND', nodes: '0,65', flags: ['MPOL_F_STATIC_NODES'] })!;
  t.equal(b.mode, 2 | (1 << 15));
  t.equal(b.maxnode, 128, 'two 64-bit words for node 65');
  t.same([...b.nodemask], [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0], 'bit 0 of word 0, bit 1 of word 1, little endian');
  t.same(planMemoryPolicy({ mode: 'MPOL_LOCAL' }), { mode: 4, maxnode: 0, nodemask: Buffer.alloc(0) });
  t.same(planMemoryPolicy({ mode: 'MPOL_PREFERRED' })?.maxnode, 0, 'preferred without nodes: local allocation');
  t.throws(() => planMemoryPolicy({ mode: 'MPOL_PREFERRED', flags: ['MPOL_F_RELATIVE_NODES'] }), /MPOL_PREFERRED without nodes takes no node flags/);
  t.throws(() => planMemoryPolicy({ mode: 'MPOL_INTERLEAVE', nodes: '0', flags: ['MPOL_F_NUMA_BALANCING'] }), /MPOL_F_NUMA_BALANCING needs mode MPOL_BIND/);
  t.throws(() => planMemoryPolicy({ mode: 'MPOL_DEFAULT', flags: ['MPOL_F_STATIC_NODES'] }), /MPOL_DEFAULT takes no flags/);
  t.throws(() => planMemoryPolicy({ mode: 'MPOL_BIND', nodes: 'x' }), /invalid node list entry "x"/);
  t.equal(planMemoryPolicy(undefined), undefined);
});
