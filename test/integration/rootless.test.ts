// Rootless: tsrun run by an unprivileged user the test creates, the
// container in a user namespace that maps that user's own uid and gid
// (`tsrun spec --rootless`), the state under $XDG_RUNTIME_DIR/tsrun, no
// cgroups it may not write. Nothing of the host becomes reachable, and a
// failed create leaves nothing in the user's state root.
import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, makeRootfs, skipSuite } from '../lib/harness';

const sb = new Sandbox('rootless');
const USER = `tsrunrl${process.pid % 100000}`;

if (spawnSync('useradd', ['--help']).status !== 0) skipSuite(t, 'no useradd');
const made = spawnSync('useradd', ['-M', '-N', '-s', '/bin/sh', USER], { encoding: 'utf8' });
if (made.status !== 0) throw new Error(`useradd ${USER}: ${made.stderr}`);
t.teardown(() => {
  spawnSync('userdel', [USER]);
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});
const uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout);
const gid = Number(spawnSync('id', ['-g', USER], { encoding: 'utf8' }).stdout);
const xdg = join(sb.dir, 'xdg');
mkdirSync(xdg, { mode: 0o700 });
chownSync(xdg, uid, gid);
const rootfs = join(sb.dir, 'rl-rootfs');
makeRootfs(rootfs);
// the executable where the user can reach it (the checkout may be under a private home)
const BIN = join(sb.dir, 'tsrun');
copyFileSync(sb.bin, BIN);
chmodSync(BIN, 0o755);

/**
 * tsrun as the user, with its own XDG_RUNTIME_DIR and no --root. Output
 * through files, not pipes: a created container inherits them, and a pipe
 * would hold spawnSync until the container ends.
 */
function asUser(args: string[]): SpawnSyncReturns<string> {
  const out = join(sb.dir, '.rl-out');
  const err = join(sb.dir, '.rl-err');
  const fo = openSync(out, 'w');
  const fe = openSync(err, 'w');
  try {
    const r = spawnSync(BIN, args, {
      uid, gid, timeout: 60_000, cwd: xdg, stdio: ['ignore', fo, fe],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', XDG_RUNTIME_DIR: xdg, HOME: xdg },
    });
    return { ...r, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') } as SpawnSyncReturns<string>;
  } finally {
    closeSync(fo);
    closeSync(fe);
  }
}

let n = 0;
/** a bundle made by `tsrun spec --rootless` as the user, then changed by MOD */
function bundle(args: string[], mod: (c: Record<string, any>) => void = () => {}): string {
  const b = join(xdg, `b${++n}`);
  mkdirSync(b);
  chownSync(b, uid, gid);
  const r = asUser(['spec', '--rootless', '--bundle', b]);
  if (r.status !== 0) throw new Error(`spec --rootless: ${r.stderr}`);
  const c = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  c.root = { path: rootfs, readonly: false };
  c.process.terminal = false;
  c.process.args = args;
  mod(c);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  return b;
}

t.test('run: uid 0 inside is the user outside, and the host stays the host', async (t) => {
  const b = bundle(['sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "; touch /made-by-container 2>&1 | grep -c "Permission denied"']);
  const r = asUser(['run', '--bundle', b, 'rl1']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `0\n 0 ${uid} 1\n1\n`, 'root in the container; the root-owned rootfs is not its to write');
  t.notOk(existsSync(join(rootfs, 'made-by-container')));
  t.same(readdirSync(join(xdg, 'tsrun')), [], 'the state root is $XDG_RUNTIME_DIR/tsrun, empty after run');
});

t.test('create, state, start, exec, kill, delete as the user', async (t) => {
  const b = bundle(['sleep', '1000']);
  let r = asUser(['create', '--bundle', b, 'rl2']);
  t.equal(r.status, 0, r.stderr);
  r = asUser(['state', 'rl2']);
  t.equal(JSON.parse(r.stdout).status, 'created');
  t.equal(readFileSync(`/proc/${JSON.parse(r.stdout).pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1], String(uid), 'the init is the user\'s process on the host');
  t.equal(asUser(['start', 'rl2']).status, 0);
  r = asUser(['exec', 'rl2', 'id', '-u']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '0\n');
  t.equal(asUser(['kill', 'rl2', 'KILL']).status, 0);
  for (let i = 0; i < 100 && JSON.parse(asUser(['state', 'rl2']).stdout || '{}').status !== 'stopped'; i++) await new Promise((res) => setTimeout(res, 20));
  r = asUser(['delete', 'rl2']);
  t.equal(r.status, 0, r.stderr);
  t.same(readdirSync(join(xdg, 'tsrun')), []);
});

t.test('limits need a cgroup the user can write: a clear error, nothing left', async (t) => {
  const b = bundle(['true'], (c) => { c.linux.resources = { pids: { limit: 10 } }; });
  const r = asUser(['run', '--bundle', b, 'rl3']);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: rootless: linux\.resources needs a cgroup this user can write \(.*EACCES.*\)\n$/);
  t.same(readdirSync(join(xdg, 'tsrun')), [], 'nothing in the state root');
});

t.test('uid and gid ranges from /etc/subuid and /etc/subgid, through newuidmap and newgidmap', async (t) => {
  const sub = spawnSync('usermod', ['--add-subuids', '300000-365535', '--add-subgids', '300000-365535', USER], { encoding: 'utf8' });
  t.equal(sub.status, 0, sub.stderr);
  const b = bundle(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map | tr -s " "; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c "%u %g" /tmp/f'], (c) => {
    c.linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: 300000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }, { containerID: 1, hostID: 300000, size: 65536 }];
    c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs' });
    for (const set of ['bounding', 'effective', 'permitted']) c.process.capabilities[set].push('CAP_CHOWN');
  });
  const r = asUser(['run', '--bundle', b, 'rl4']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, ` 0 ${uid} 1\n 1 300000 65536\n 0 ${gid} 1\n 1 300000 65536\n1000 1000\n`, 'both ranges mapped; ids from the range are usable');
  // a range the user was not given: newuidmap refuses, one clear line, nothing left
  const bad = bundle(['true'], (c) => {
    c.linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: 500000, size: 10 }];
  });
  const f = asUser(['run', '--bundle', bad, 'rl5']);
  t.not(f.status, 0);
  t.match(f.stderr, /tsrun: linux\.uidMappings: \/usr\/bin\/newuidmap for pid \d+ failed \(are the ids in \/etc\/subuid for this user\?\): EPERM\n$/);
  t.same(readdirSync(join(xdg, 'tsrun')), []);
});

t.test('root of a user namespace (as rootless podman runs its runtime): rootless by itself, devices bound, the cgroups it can write used', async (t) => {
  const { defaultConfig } = require('../lib/harness') as typeof import('../lib/harness');
  const c = defaultConfig(['sh', '-c', 'id -u; ls -l /dev/null | cut -c1; cat /proc/self/cgroup | head -1']);
  c.root = { path: rootfs, readonly: true };
  (c.linux as Record<string, unknown>).cgroupsPath = `${sb.cgroupParent}/un1`;
  c.linux.resources = { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 100 } };
  // gid 5 (tty) is not mapped in this user namespace
  for (const m of c.mounts) if (m.destination === '/dev/pts') m.options = m.options!.filter((o) => o !== 'gid=5');
  const b = join(sb.dir, 'userns-bundle');
  mkdirSync(b);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  const state = join(sb.dir, 'userns-state');
  // a user namespace mapping root to the real root: uid 0 there, no privilege over the host's cgroups
  const r = spawnSync('unshare', ['--user', '--map-user=0', '--map-group=0', '--', BIN, '--root', state, 'run', '--bundle', b, 'un1'], { encoding: 'utf8', timeout: 60_000 });
  if (/unrecognized option/.test(r.stderr)) return void t.comment(`unshare here cannot map: ${r.stderr.trim()}`);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^0\nc\n/, 'root inside; /dev/null is there (bound: mknod is refused in a user namespace)');
  t.match(r.stderr, /rootless: linux\.resources\.devices is not enforced by a cgroup/, 'the device rules it cannot enforce are said, not dropped silently');
  t.match(r.stdout, /pids:\/tsrun-test-\d+-rootless\/un1\n|:\/tsrun-test-\d+-rootless\/un1\n/, 'the cgroups it can write (here: a namespace root mapped to the host\'s) are used');
});
