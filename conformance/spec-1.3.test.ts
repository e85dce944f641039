// runtime-spec 1.3's newer fields, observed from inside and outside the
// container. runc 1.1 and crun 1.8 (the versions here) predate them: checks
// that need a 1.3 runtime say so and are not run against those.
import { chownSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, makeRootfs, runtimeName, type Config } from '../test/lib/harness';
import { suite } from './suite';

const { sb, check, inside } = suite('c13');
const is13 = runtimeName() === 'tsrun';
const NOT13 = `not checked for ${runtimeName()}: it predates runtime-spec 1.3 here`;

/** the memory policy the container's process runs under, as numa_maps shows it */
function policyOf(mp: Record<string, unknown>): { policy: string; r: ReturnType<typeof inside> } {
  const r = inside("awk 'NR==1 {print $2}' /proc/self/numa_maps", (c) => {
    (c.linux as Record<string, unknown>).memoryPolicy = mp;
  });
  return { policy: r.stdout.trim(), r };
}

check('config-linux.md#memory-policy', 'memoryPolicy: the process runs under the mode, nodes and flags given', (t) => {
  if (!is13) return void t.comment(NOT13);
  for (const [mp, want] of [
    [{ mode: 'MPOL_BIND', nodes: '0' }, 'bind:0'],
    [{ mode: 'MPOL_INTERLEAVE', nodes: '0' }, 'interleave:0'],
    [{ mode: 'MPOL_PREFERRED', nodes: '0' }, 'prefer:0'],
    [{ mode: 'MPOL_BIND', nodes: '0', flags: ['MPOL_F_STATIC_NODES'] }, 'bind=static:0'],
    [{ mode: 'MPOL_LOCAL' }, 'local'],
    [{ mode: 'MPOL_DEFAULT' }, 'default'],
  ] as const) {
    const { policy, r } = policyOf(mp);
    t.equal(policy, want, `${JSON.stringify(mp)} ${r.stderr}`);
  }
});

check('config-linux.md#memory-policy', 'memoryPolicy: invalid combinations are errors (one line, nothing left)', (t) => {
  if (!is13) return void t.comment(NOT13);
  for (const [mp, re] of [
    [{ mode: 'MPOL_DEFAULT', nodes: '0' }, /memoryPolicy\.nodes: MPOL_DEFAULT takes no nodes/],
    [{ mode: 'MPOL_LOCAL', nodes: '0' }, /memoryPolicy\.nodes: MPOL_LOCAL takes no nodes/],
    [{ mode: 'MPOL_BIND' }, /memoryPolicy\.nodes: MPOL_BIND needs at least one node/],
    [{ mode: 'MPOL_INTERLEAVE', nodes: '' }, /MPOL_INTERLEAVE needs at least one node/],
    [{ mode: 'MPOL_BIND', nodes: '0', flags: ['MPOL_F_STATIC_NODES', 'MPOL_F_RELATIVE_NODES'] }, /exclude each other/],
    [{ mode: 'MPOL_BIND', nodes: '3-1' }, /invalid node range 3-1/],
    [{ mode: 'MPOL_BIND', nodes: '1000000' }, /node 1000000 is beyond/],
  ] as const) {
    const { r } = policyOf(mp as Record<string, unknown>);
    t.not(r.status, 0, JSON.stringify(mp));
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  t.same(sb.leaks(), []);
});

check('config.md#mounts', 'a relative mount destination is interpreted as relative to "/"', (t) => {
  if (!is13) return void t.comment(NOT13);
  const r = inside('grep " /rel/tmp " /proc/self/mountinfo | cut -d" " -f5', (c) => {
    c.mounts.push({ destination: 'rel/tmp', type: 'tmpfs', source: 'tmpfs' });
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), '/rel/tmp');
  t.match(r.stderr, /mounts\[\d+\]\.destination "rel\/tmp" is relative \(deprecated\)/, 'warned');
});

const refused: [string, (c: Config) => void, RegExp][] = [
  ['config-linux.md#intelrdt', (c) => { (c.linux as Record<string, unknown>).intelRdt = { closID: 'guaranteed_group' }; }, /linux\.intelRdt: no resctrl filesystem is mounted on this host/],
  ['config-linux.md#mount-label', (c) => { (c.linux as Record<string, unknown>).mountLabel = 'system_u:object_r:container_file_t:s0'; }, /linux\.mountLabel: SELinux is not enabled on this host/],
];
for (const [clause, mod, re] of refused) {
  check(clause, `${re.source.split(':')[0]!.replace(/\\/g, '')}: an error where the host cannot honour it, never ignored`, (t) => {
    if (!is13) return void t.comment(NOT13);
    // preconditions of the MUST: this host has no resctrl and no SELinux
    if (clause.endsWith('intelrdt') && readdirSync('/sys/fs').includes('resctrl')) return void t.comment('resctrl exists here');
    const c = defaultConfig(['true']);
    mod(c);
    const r = sb.run(c);
    t.not(r.status, 0);
    t.match(r.stderr, re);
    t.same(sb.leaks(), [], 'nothing left');
  });
}

check('config.md#mounts', 'tmpcopyup: a tmpfs over a directory starts with its contents (owner, mode, links), the rootfs untouched', (t) => {
  const rootfs = join(sb.dir, 'copyup-rootfs');
  makeRootfs(rootfs);
  mkdirSync(join(rootfs, 'data', 'sub'), { recursive: true });
  writeFileSync(join(rootfs, 'data', 'a.txt'), 'hello\n');
  writeFileSync(join(rootfs, 'data', 'sub', 'secret'), 'x', { mode: 0o600 });
  chownSync(join(rootfs, 'data', 'sub', 'secret'), 1000, 1000);
  symlinkSync('a.txt', join(rootfs, 'data', 'link'));
  const script = 'cat /data/link; stat -c "%a %u %n" /data/sub/secret; grep " /data " /proc/self/mountinfo | cut -d" " -f9; echo changed > /data/a.txt && cat /data/a.txt';
  for (const ro of [false, true]) {
    const c = defaultConfig(['sh', '-c', ro ? script.replace(' && cat /data/a.txt', ' 2>/dev/null || echo read-only') : script]);
    c.root = { path: rootfs, readonly: false };
    c.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', ...(ro ? ['ro'] : [])] });
    const r = sb.run(c);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, `hello\n600 1000 /data/sub/secret\ntmpfs\n${ro ? 'read-only' : 'changed'}\n`, ro ? 'ro: filled, then read-only' : 'copied up and writable');
  }
  t.equal(readFileSync(join(rootfs, 'data', 'a.txt'), 'utf8'), 'hello\n', 'the rootfs file is not what the container wrote');
});

check('config-linux.md#pids', 'pids.limit 0 is a limit of zero tasks, on cgroup v1 too: nothing can start, one clear error, nothing left', (t) => {
  if (!is13) return void t.comment(NOT13);
  const c = defaultConfig(['true']);
  c.linux.resources = { pids: { limit: 0 } };
  const r = sb.run(c);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: .*EAGAIN\n$/, r.stderr);
  t.same(sb.leaks(), []);
});
