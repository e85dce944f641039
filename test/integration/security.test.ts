// Regression tests for runc advisories about paths inside the rootfs: a rootfs
// crafted to make the runtime touch a host path. Each attack must be refused
// or stay inside the rootfs, leave the host path untouched and leak nothing.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, Sandbox, defaultConfig, makeRootfs, type Config } from '../lib/harness';

const sb = new Sandbox('sec');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

let n = 0;
/** A private rootfs to booby-trap, and a host directory the attack aims at. */
function trap(): { rootfs: string; host: string } {
  const rootfs = join(sb.dir, `evil-rootfs-${++n}`);
  makeRootfs(rootfs);
  const host = join(sb.dir, `host-target-${n}`);
  mkdirSync(host);
  writeFileSync(join(host, 'precious'), 'untouched\n');
  return { rootfs, host };
}

function hostUntouched(t: Test, host: string) {
  t.same(readdirSync(host), ['precious'], 'nothing created in the host directory');
  t.equal(readFileSync(join(host, 'precious'), 'utf8'), 'untouched\n');
  t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(host), 'nothing mounted on the host path');
}

function runIn(rootfs: string, cfg: Config) {
  cfg.root = { path: rootfs, readonly: false };
  return sb.run(cfg);
}

t.test('CVE-2019-19921 / CVE-2023-27561: /proc as a symlink to a host path is refused', async (t) => {
  const { rootfs, host } = trap();
  rmSync(join(rootfs, 'proc'), { recursive: true });
  symlinkSync(host, join(rootfs, 'proc'));
  const r = runIn(rootfs, defaultConfig(['true']));
  t.not(r.status, 0);
  t.match(r.stderr, /mounts\[0\]: proc destination \/proc is a symlink: filesystem "proc" must be mounted on ordinary directory/, 'runc\'s words too');
  hostUntouched(t, host);
  t.same(sb.leaks(), []);
});

t.test('/proc as a relative symlink inside the rootfs is refused too', async (t) => {
  const { rootfs, host } = trap();
  rmSync(join(rootfs, 'proc'), { recursive: true });
  mkdirSync(join(rootfs, 'fakeproc'));
  symlinkSync('fakeproc', join(rootfs, 'proc'));
  const r = runIn(rootfs, defaultConfig(['true']));
  t.not(r.status, 0);
  t.match(r.stderr, /proc destination \/proc is a symlink/);
  hostUntouched(t, host);
});

t.test('/sys as a symlink is refused', async (t) => {
  const { rootfs, host } = trap();
  rmSync(join(rootfs, 'sys'), { recursive: true });
  symlinkSync(host, join(rootfs, 'sys'));
  const r = runIn(rootfs, defaultConfig(['true']));
  t.not(r.status, 0);
  t.match(r.stderr, /sysfs destination \/sys is a symlink/);
  hostUntouched(t, host);
});

t.test('CVE-2024-45310: a mount destination under an absolute symlink to a host dir stays in the rootfs', async (t) => {
  const { rootfs, host } = trap();
  symlinkSync(host, join(rootfs, 'mnt'));
  const c = defaultConfig(['sh', '-c', 'ls -d /mnt/sub && echo inside']);
  c.mounts.push({ destination: '/mnt/sub', type: 'tmpfs', source: 'tmpfs' });
  const r = runIn(rootfs, c);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /inside/);
  // the symlink was followed as if the rootfs were /: the dir is made inside it
  t.ok(existsSync(join(rootfs, host, 'sub')), 'created under the rootfs');
  hostUntouched(t, host);
});

t.test('a ..-laden destination cannot climb out of the rootfs', async (t) => {
  const { rootfs, host } = trap();
  const c = defaultConfig(['true']);
  c.mounts.push({ destination: `/../../../../../..${host}/x`, type: 'tmpfs', source: 'tmpfs' });
  const r = runIn(rootfs, c);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(rootfs, host, 'x')), 'the destination was made inside the rootfs');
  hostUntouched(t, host);
});

t.test('a relative symlink that climbs with .. stays in the rootfs', async (t) => {
  const { rootfs, host } = trap();
  symlinkSync(`../../../../../../../..${host}`, join(rootfs, 'escape'));
  const c = defaultConfig(['true']);
  c.mounts.push({ destination: '/escape/y', type: 'tmpfs', source: 'tmpfs' });
  const r = runIn(rootfs, c);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(rootfs, host, 'y')));
  hostUntouched(t, host);
});

t.test('a bind mount file destination through a symlink does not create a host file', async (t) => {
  const { rootfs, host } = trap();
  rmSync(join(rootfs, 'etc'), { recursive: true });
  symlinkSync(host, join(rootfs, 'etc'));
  const src = join(sb.dir, `hosts-${n}`);
  writeFileSync(src, '127.0.0.1 localhost\n');
  const c = defaultConfig(['cat', '/etc/hosts']);
  c.mounts.push({ destination: '/etc/hosts', type: 'bind', source: src, options: ['bind', 'ro'] });
  const r = runIn(rootfs, c);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '127.0.0.1 localhost\n');
  hostUntouched(t, host);
});

t.test('maskedPaths and readonlyPaths that are symlinks resolve inside the container', async (t) => {
  const { rootfs, host } = trap();
  symlinkSync(host, join(rootfs, 'masklink'));
  const c = defaultConfig(['true']);
  c.linux.maskedPaths = ['/masklink'];
  c.linux.readonlyPaths = ['/masklink'];
  const r = runIn(rootfs, c);
  t.equal(r.status, 0, r.stderr);
  hostUntouched(t, host);
});

t.test('CVE-2019-5736: the waiting init runs from a sealed memfd, not a host binary', async (t) => {
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(defaultConfig(['true'])), id]).status, 0);
  const pid = sb.state(id)!.pid;
  const exe = require('node:fs').readlinkSync(`/proc/${pid}/exe`);
  t.match(exe, /^\/memfd:tsrun-stage/, exe);
  // and it is not writable through /proc/<pid>/exe (sealed)
  let err = '';
  try {
    writeFileSync(`/proc/${pid}/exe`, 'overwritten');
  } catch (e) {
    err = (e as NodeJS.ErrnoException).code ?? '';
  }
  t.match(err, /ETXTBSY|EPERM|EACCES/, `write refused: ${err}`);
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('--no-pivot leaves no full procfs or sysfs of the host: a user namespace cannot mount a fresh procfs', async (t) => {
  const { rootfs } = trap();
  const r0 = spawnSync('cc', ['-O2', '-static', '-o', join(rootfs, 'bin', 'procmount'), join(REPO, 'test', 'helpers', 'procmount.c')], { encoding: 'utf8' });
  t.equal(r0.status, 0, r0.stderr);
  const before = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
  for (const noPivot of [true, false]) {
    const c = defaultConfig(['/bin/procmount', '/tmp/freshproc']);
    c.root = { path: rootfs, readonly: false };
    const id = sb.id();
    const r = sb.rt(['run', ...(noPivot ? ['--no-pivot'] : []), '--bundle', sb.bundle(c), id]);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^denied Operation not permitted$/m, `no-pivot ${noPivot}: the kernel refuses the mount`);
    t.notMatch(r.stdout, /mounted/);
  }
  t.equal(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length, before, 'the host\'s mounts are untouched');
  t.ok(existsSync('/proc/self/status') && existsSync('/sys/kernel'), 'the host\'s /proc and /sys are still there');
});

t.test('CVE-2021-30465: a mount destination swapped for a symlink to a host dir while mounting stays in the rootfs', async (t) => {
  const { rootfs, host } = trap();
  const race = join(rootfs, 'race');
  mkdirSync(join(race, 'd-dir'), { recursive: true });
  symlinkSync(host, join(race, 'd-link'));
  // A second process flips /race/d between a real directory and a symlink to
  // the host directory as fast as it can, for as long as the containers start.
  const racer = spawn(process.execPath, ['-e', `
    const fs = require('fs'); const r = ${JSON.stringify(race)};
    for (;;) {
      try { fs.renameSync(r + '/d-dir', r + '/d'); fs.renameSync(r + '/d', r + '/d-dir'); } catch {}
      try { fs.renameSync(r + '/d-link', r + '/d'); fs.renameSync(r + '/d', r + '/d-link'); } catch {}
    }`], { stdio: 'ignore' });
  t.teardown(() => { racer.kill('SIGKILL'); });
  const c = defaultConfig(['true']);
  for (let i = 0; i < 10; i++) c.mounts.push({ destination: `/race/d/m${i}`, type: 'tmpfs', source: 'tmpfs' });
  c.mounts.push({ destination: '/race/d/bind', type: 'bind', source: join(sb.dir, 'state'), options: ['rbind', 'ro'] });
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 15; i++) {
    const r = runIn(rootfs, JSON.parse(JSON.stringify(c)));
    if (r.status === 0) ok++;
    else {
      refused++;
      t.match(r.stderr, /^tsrun: mounts\[\d+\]: .*\n$/, 'a failure is one clear line');
    }
  }
  racer.kill('SIGKILL');
  t.comment(`${ok} started, ${refused} refused while racing`);
  t.ok(ok + refused === 15);
  hostUntouched(t, host);
  t.same(sb.leaks(), []);
});

t.test('CVE-2025-31133: /dev/null replaced by a symlink to a procfs file is refused for masking', async (t) => {
  const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
  for (const [kind, plant] of [
    ['symlink to /proc/sys/kernel/core_pattern', (p: string) => symlinkSync('/proc/sys/kernel/core_pattern', p)],
    ['a regular file', (p: string) => writeFileSync(p, '')],
  ] as const) {
    const { rootfs, host } = trap();
    // /dev is a directory the container controls (a bind, so no default
    // devices are made in it): its null is what masking would find
    const evilDev = join(sb.dir, `evil-dev-${n}`);
    mkdirSync(evilDev);
    plant(join(evilDev, 'null'));
    const c = defaultConfig(['sh', '-c', 'echo "|/bin/evil" > /proc/sys/kernel/core_pattern']);
    c.mounts = c.mounts.filter((m) => !m.destination.startsWith('/dev'));
    c.mounts.push({ destination: '/dev', type: 'bind', source: evilDev, options: ['rbind'] });
    c.linux.maskedPaths = ['/proc/timer_list', '/proc/keys'];
    c.linux.readonlyPaths = ['/proc/sys'];
    const r = runIn(rootfs, c);
    t.not(r.status, 0, `${kind}: refused`);
    t.match(r.stderr, /^tsrun: \/dev\/null is not the null device \(char 1:3\): refusing to mask with it: EPERM\n$/, kind);
    hostUntouched(t, host);
  }
  t.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), before, 'core_pattern untouched');
  t.same(sb.leaks(), []);
});

t.test('sysctl writes go to procfs only: a rootfs /proc/sys symlink (no proc mount) is refused', async (t) => {
  const { rootfs, host } = trap();
  mkdirSync(join(host, 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(host, 'net', 'ipv4', 'ip_forward'), 'host-file\n');
  symlinkSync(host, join(rootfs, 'proc', 'sys'));
  const c = defaultConfig(['true']);
  c.mounts = c.mounts.filter((m) => m.type !== 'proc');
  c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  c.linux.maskedPaths = [];
  c.linux.readonlyPaths = [];
  const r = runIn(rootfs, c);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: sysctl: open \/proc\/sys: ELOOP\n$/);
  t.equal(readFileSync(join(host, 'net', 'ipv4', 'ip_forward'), 'utf8'), 'host-file\n', 'the file behind the link is untouched');
  t.same(sb.leaks(), []);
});

t.test('CVE-2016-9962: the init is non-dumpable until it execs (its /proc entries stay root-owned)', async (t) => {
  const c = defaultConfig(['sleep', '1000']);
  c.linux.namespaces.push({ type: 'user' });
  c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  const pid = sb.state(id)!.pid;
  const { statSync } = require('node:fs') as typeof import('node:fs');
  t.equal(statSync(`/proc/${pid}/fd`).uid, 0, 'waiting init (uid 100000 on the host): non-dumpable, /proc entries owned by root');
  t.equal(sb.rt(['start', id]).status, 0);
  let uid = 0;
  for (let i = 0; i < 100 && uid === 0; i++) {
    uid = statSync(`/proc/${pid}/fd`).uid;
    if (!uid) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(uid, 100000, 'after execve of the container program: dumpable again, owned by its uid');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('CVE-2024-21626 (exec side): a cwd through /proc/self/fd cannot reach a host directory', async (t) => {
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  for (const fd of [3, 4, 5, 6, 7, 8]) {
    const r = sb.rt(['exec', '--cwd', `/proc/self/fd/${fd}`, id, 'pwd']);
    t.not(r.status, 0, `fd ${fd}: refused`);
    t.match(r.stderr, /^tsrun: chdir to cwd \("\/proc\/self\/fd\/\d+"\) set in config\.json: (ENOENT|ENOTDIR)\n$/, "no directory fd of the host is open");
  }
  const r = sb.rt(['exec', id, 'sh', '-c', 'ls /proc/self/fd | tr "\\n" " "; readlink /proc/self/cwd']);
  t.equal(r.stdout, '0 1 2 3 /\n', 'only stdio (3 is ls reading the directory)');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

/** A mount namespace (a private copy of ours) whose /proc is a tmpfs with
 * decoy files where the runtime's procfs writes would land: what a
 * container that owns the mount namespace another one joins can build. */
async function decoyProcNamespace(t: Test): Promise<{ pid: number; decoy: (f: string) => string }> {
  const script = 'mount -t tmpfs decoy /proc && mkdir -p /proc/self && for f in timens_offsets oom_score_adj setgroups uid_map gid_map; do : > /proc/self/$f; done && echo ready && exec sleep 1000';
  const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  await new Promise<void>((res, rej) => {
    p.stdout!.once('data', () => res());
    p.once('exit', (c) => rej(new Error(`decoy namespace exited ${c}`)));
  });
  const pid = p.pid!;
  const decoy = (f: string) => spawnSync('nsenter', ['-t', String(pid), '-m', 'cat', `/proc/self/${f}`], { encoding: 'utf8' }).stdout;
  return { pid, decoy };
}

function joinedMountConfig(pid: number): Config {
  const c = defaultConfig(['sleep', '1000']);
  delete (c as Record<string, unknown>).hostname;
  c.root = { path: sb.rootfs, readonly: false };
  c.mounts = [];
  c.linux.maskedPaths = [];
  c.linux.readonlyPaths = [];
  c.linux.namespaces = [{ type: 'pid' }, { type: 'mount', path: `/proc/${pid}/ns/mnt` }];
  return c;
}

t.test('CVE-2025-52881 class: procfs writes never go through a joined mount namespace\'s /proc (a tmpfs with decoys)', async (t) => {
  const { pid, decoy } = await decoyProcNamespace(t);
  const c = joinedMountConfig(pid);
  c.linux.namespaces.push({ type: 'time' });
  (c.linux as Record<string, unknown>).timeOffsets = { monotonic: { secs: 7 * 86400, nanosecs: 0 } };
  (c.process as Record<string, unknown>).oomScoreAdj = 123;
  const id = sb.id();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  const init = sb.state(id)!.pid;
  t.match(readFileSync(`/proc/${init}/timens_offsets`, 'utf8'), /monotonic\s+604800\s+0/, 'the offsets reached the real time namespace');
  t.equal(readFileSync(`/proc/${init}/oom_score_adj`, 'utf8').trim(), '123');
  t.equal(decoy('timens_offsets'), '', 'the decoy timens_offsets was not written');
  t.equal(decoy('oom_score_adj'), '');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('CVE-2025-52881 class: a new user namespace\'s id maps are written through the runtime\'s procfs, not the joined one', async (t) => {
  const { pid, decoy } = await decoyProcNamespace(t);
  const c = joinedMountConfig(pid);
  c.linux.namespaces.push({ type: 'user' });
  c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const id = sb.id();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  const init = sb.state(id)!.pid;
  t.match(readFileSync(`/proc/${init}/uid_map`, 'utf8'), /^\s*0\s+100000\s+65536\s*$/);
  t.match(readFileSync(`/proc/${init}/gid_map`, 'utf8'), /^\s*0\s+100000\s+65536\s*$/);
  t.equal(decoy('uid_map') + decoy('gid_map'), '', 'no map written to the decoys');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});
