// Runtime-agnostic conformance checks, each tagged with the runtime-spec
// clause it proves. Run against any runtime:
//   npx tap conformance/                 (tsrun)
//   RUNTIME=runc npx tap conformance/    (runc: must pass too, proving the checks honest)
// Prints a pass/fail table per spec section at the end.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, makeRootfs, runtimeName, sleepMs, type Config } from '../test/lib/harness';
import { suite } from './suite';

const { sb, check, inside, waitFor } = suite('conf');

check('runtime.md#state', 'state has the REQUIRED properties and status values through the lifecycle', (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const s = sb.state(id)!;
  t.equal(typeof s.ociVersion, 'string');
  t.equal(s.id, id);
  t.equal(s.status, 'created');
  t.ok((s.pid as number) > 0, 'pid on Linux when created');
  t.equal(s.bundle, b, 'bundle is the absolute path');
  t.equal(sb.rt(['start', id]).status, 0);
  t.equal(sb.state(id)!.status, 'running');
  t.equal(sb.rt(['kill', id, 'KILL']).status, 0);
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'), 'stopped after the process exits');
  t.equal(sb.rt(['delete', id]).status, 0);
});

check('runtime.md#state', 'annotations from config.json appear in the state', (t) => {
  const id = sb.id();
  const c = defaultConfig(['true']);
  c.annotations = { 'org.opencontainers.test': 'yes' };
  t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  t.same(sb.state(id)!.annotations, { 'org.opencontainers.test': 'yes' });
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

check('runtime.md#create', 'create with an id already in use is an error and changes nothing', (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['true']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const pid = sb.state(id)!.pid;
  t.not(sb.rt(['create', '--bundle', b, id]).status, 0);
  t.equal(sb.state(id)!.pid, pid);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

check('runtime.md#start', 'the user program does not run before start', (t) => {
  const id = sb.id();
  const dir = join(sb.dir, `mark-${id}`);
  mkdirSync(dir);
  const c = defaultConfig(['sh', '-c', 'echo started > /mark/file']);
  c.mounts.push({ destination: '/mark', type: 'bind', source: dir, options: ['rbind', 'rw'] });
  t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  sleepMs(200);
  t.notOk(existsSync(join(dir, 'file')), 'not run after create');
  t.equal(sb.rt(['start', id]).status, 0);
  t.ok(waitFor(() => existsSync(join(dir, 'file'))), 'run after start');
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
  t.equal(sb.rt(['delete', id]).status, 0);
});

check('runtime.md#start', 'start of a stopped container is an error', (t) => {
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(defaultConfig(['true'])), id]).status, 0);
  t.equal(sb.rt(['start', id]).status, 0);
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
  t.not(sb.rt(['start', id]).status, 0);
  t.equal(sb.rt(['delete', id]).status, 0);
});

check('runtime.md#kill', 'kill sends the signal to the container process', (t) => {
  const id = sb.id();
  const dir = join(sb.dir, `kill-${id}`);
  mkdirSync(dir);
  const c = defaultConfig(['sh', '-c', 'trap "echo got-usr1 > /k/out; exit 0" USR1; while true; do sleep 0.05; done']);
  c.mounts.push({ destination: '/k', type: 'bind', source: dir, options: ['rbind', 'rw'] });
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(c), id]).status, 0);
  sleepMs(100);
  t.equal(sb.rt(['kill', id, 'USR1']).status, 0);
  t.ok(waitFor(() => existsSync(join(dir, 'out'))));
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
  t.equal(sb.rt(['delete', id]).status, 0);
});

check('runtime.md#delete', 'delete of a running container (without force) is an error; after delete the id is gone', (t) => {
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  t.not(sb.rt(['delete', id]).status, 0);
  t.equal(sb.state(id)?.status, 'running');
  t.equal(sb.rt(['kill', id, 'KILL']).status, 0);
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
  t.equal(sb.rt(['delete', id]).status, 0);
  t.equal(sb.state(id), null);
});

check('runtime.md#lifecycle', 'hooks run in order: prestart, createRuntime, createContainer, poststart, poststop', (t) => {
  const log = join(sb.dir, 'conf-hooks.log');
  const hook = join(sb.dir, 'conf-hook.sh');
  writeFileSync(hook, `#!/bin/sh\nread -r state\necho "$1" >> ${log}\n`);
  chmodSync(hook, 0o755);
  const c = defaultConfig(['true']);
  const h = (n: string) => [{ path: hook, args: ['conf-hook.sh', n] }];
  c.hooks = { prestart: h('prestart'), createRuntime: h('createRuntime'), createContainer: h('createContainer'), poststart: h('poststart'), poststop: h('poststop') };
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  t.equal(sb.rt(['start', id]).status, 0);
  t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
  t.equal(sb.rt(['delete', id]).status, 0);
  t.same(readFileSync(log, 'utf8').trim().split('\n'), ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
});

check('config.md#createcontainer-hooks', 'createContainer hooks run in the container\'s mount namespace with the rootfs as their cwd', (t) => {
  // runc chdirs to the rootfs before running them; the host's / would let `touch ./lib/x` write a host file
  const rootfs = join(sb.dir, 'conf-hook-cwd-rootfs');
  makeRootfs(rootfs);
  const out = join(sb.dir, 'conf-hook-cwd.txt');
  const c = defaultConfig(['true']);
  c.root = { path: rootfs, readonly: false };
  c.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', `pwd > ${out}; touch ./made-by-hook`] }] };
  const id = sb.id();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(readFileSync(out, 'utf8').trim(), rootfs);
  t.ok(existsSync(join(rootfs, 'made-by-hook')), 'the relative path landed in the rootfs');
  t.notOk(existsSync('/made-by-hook'), 'not in the host\'s /');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

// spec 1.3 lifecycle: a failing prestart/createRuntime/createContainer/startContainer/poststart
// hook is an error, the container is stopped and the lifecycle goes on at step 12 (destroy),
// then 13 (poststop). runc 1.1 follows the older text for startContainer and poststart.
for (const phase of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart'] as const) {
  check('runtime.md#lifecycle', `a failing ${phase} hook: an error, the container stopped and destroyed, poststop runs`, (t) => {
    if ((phase === 'startContainer' || phase === 'poststart') && runtimeName() === 'runc') {
      t.comment(`not checked for runc: runc 1.1 reports no ${phase} failure from start (the spec 1.3 rule is newer)`);
      return;
    }
    const mark = join(sb.dir, `conf-poststop-${phase}`);
    const c = defaultConfig(['sleep', '1000']);
    const fail = { path: '/bin/sh', args: ['sh', '-c', 'echo hook-broke >&2; exit 3'] };
    c.hooks = { [phase]: [fail], poststop: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${mark}`] }] };
    const id = sb.id();
    const cr = sb.rt(['create', '--bundle', sb.bundle(c), id]);
    if (phase === 'startContainer' || phase === 'poststart') {
      t.equal(cr.status, 0, cr.stderr);
      const st = sb.rt(['start', id]);
      t.not(st.status, 0, 'start fails');
      t.match(st.stderr, /hook/, st.stderr);
      t.ok(waitFor(() => sb.state(id)?.status === 'stopped'), 'the container is stopped');
      t.equal(sb.rt(['delete', id]).status, 0, 'delete destroys it');
    } else {
      t.not(cr.status, 0, 'create fails');
      t.match(cr.stderr, /hook/, cr.stderr);
    }
    t.equal(sb.state(id), null, 'no container left');
    t.ok(existsSync(mark), 'poststop ran');
  });
}

check('config.md#lifecycle-hooks', 'a failing createRuntime hook fails create and leaves no container', (t) => {
  const c = defaultConfig(['true']);
  c.hooks = { createRuntime: [{ path: '/bin/false' }] };
  const id = sb.id();
  t.not(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  t.equal(sb.state(id), null);
});

check('config.md#lifecycle-hooks', 'hooks get the container state on stdin', (t) => {
  const out = join(sb.dir, 'conf-state.json');
  const c = defaultConfig(['true']);
  c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}`] }] };
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
  const st = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(st.id, id);
  t.ok(st.pid > 0);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

check('config.md#root', 'root.readonly makes the root filesystem read-only', (t) => {
  const r = inside('touch /probe 2>/dev/null && echo rw || echo ro');
  t.equal(r.stdout.trim(), 'ro');
});

check('config.md#mounts', 'proc, tmpfs, devpts, mqueue, sysfs mounted at their destinations', (t) => {
  const r = inside('awk \'{for(i=1;i<=NF;i++) if($i=="-") print $5, $(i+1)}\' /proc/self/mountinfo');
  for (const [m, ty] of [['/proc', 'proc'], ['/dev', 'tmpfs'], ['/dev/pts', 'devpts'], ['/dev/mqueue', 'mqueue'], ['/sys', 'sysfs']]) {
    t.match(r.stdout, new RegExp(`^${m} ${ty}$`, 'm'), m!);
  }
});

check('config.md#mounts', 'bind mount with ro option is read-only', (t) => {
  const dir = join(sb.dir, 'conf-bind');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'f'), 'x');
  const r = inside('cat /b/f; touch /b/g 2>/dev/null && echo rw || echo ro', (c) => {
    c.mounts.push({ destination: '/b', type: 'bind', source: dir, options: ['rbind', 'ro'] });
  });
  t.equal(r.stdout, 'x' + 'ro\n');
});

check('config.md#process', 'args, env and cwd', (t) => {
  const r = inside('echo "$X"; pwd', (c) => {
    c.process.env.push('X=hello world');
    c.process.cwd = '/etc';
  });
  t.equal(r.stdout, 'hello world\n/etc\n');
});

check('config.md#user', 'uid, gid, additionalGids', (t) => {
  const r = inside('id -u; id -g; id -G', (c) => {
    c.process.user = { uid: 1000, gid: 1000, additionalGids: [65534] };
  });
  const l = r.stdout.trim().split('\n');
  t.equal(l[0], '1000');
  t.equal(l[1], '1000');
  t.same(l[2]!.split(' ').sort(), ['1000', '65534']);
});

check('config.md#process', 'a cwd only root can search works for a non-root user (entered before the identity switch)', (t) => {
  // runc chdirs as root first, then drops privileges
  const rootfs = join(sb.dir, 'conf-cwd-0700-rootfs');
  makeRootfs(rootfs);
  chmodSync(join(rootfs, 'root'), 0o700);
  const r = inside('pwd; id -u', (c) => {
    c.root = { path: rootfs, readonly: true };
    c.process.cwd = '/root';
    c.process.user = { uid: 1000, gid: 1000 };
  });
  t.equal(r.stdout, '/root\n1000\n', r.stderr);
});

check('config.md#process', 'the console pty belongs to the process\'s uid (its gid stays)', async (t) => {
  const id = sb.id();
  const c = defaultConfig(['sh', '-c', 'stat -c "%u %g" $(tty)']);
  c.process.terminal = true;
  c.process.user = { uid: 1000, gid: 1000 };
  const r = spawnSync('script', ['-qec', `${[sb.bin, '--root', sb.root, 'run', '--bundle', sb.bundle(c), id].join(' ')}`, '/dev/null'], { encoding: 'utf8', timeout: 20000 });
  t.equal(r.status, 0, r.stderr);
  // `script` shows a ^@ ahead of the output with runc and tsrun alike
  t.match(r.stdout.replace(/\r/g, ''), /^(\^@)?1000 5$/m);
});

check('config.md#process', 'rlimits applied', (t) => {
  const r = inside('ulimit -n; ulimit -Hn', (c) => {
    c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }];
  });
  t.equal(r.stdout, '100\n200\n');
});

check('config.md#process', 'capabilities sets and noNewPrivileges', (t) => {
  const r = inside('grep -E "^(CapBnd|CapEff|NoNewPrivs)" /proc/self/status', (c) => {
    c.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] };
    c.process.noNewPrivileges = true;
  });
  t.match(r.stdout, /CapBnd:\s+0000000000000020/);
  t.match(r.stdout, /CapEff:\s+0000000000000020/);
  t.match(r.stdout, /NoNewPrivs:\s+1/);
});

check('config.md#process', 'oomScoreAdj', (t) => {
  const r = inside('cat /proc/self/oom_score_adj', (c) => {
    c.process.oomScoreAdj = 200;
  });
  t.equal(r.stdout.trim(), '200');
});

check('config.md#hostname', 'hostname set in the new UTS namespace', (t) => {
  const r = inside('hostname', (c) => {
    c.hostname = 'conformance-host';
  });
  t.equal(r.stdout.trim(), 'conformance-host');
});

check('config-linux.md#namespaces', 'a new pid namespace makes the process pid 1', (t) => {
  t.equal(inside('echo $$').stdout.trim(), '1');
});

check('config-linux.md#namespaces', 'new namespaces differ from the runtime\'s; a type left out is inherited', (t) => {
  const r = inside('for n in net ipc uts mnt pid user; do readlink /proc/self/ns/$n; done');
  const l = r.stdout.trim().split('\n');
  ['net', 'ipc', 'uts', 'mnt', 'pid'].forEach((n, i) => t.not(l[i], readlinkSync(`/proc/self/ns/${n}`), n));
  t.equal(l[5], readlinkSync('/proc/self/ns/user'), 'user inherited');
});

check('config-linux.md#user-namespace-mappings', 'uid/gid mappings of a new user namespace', (t) => {
  const r = inside('cat /proc/self/uid_map', (c) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 1000 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 1000 }];
  });
  t.equal(r.stdout.trim().replace(/\s+/g, ' '), '0 200000 1000', r.stderr);
});

check('config-linux.md#default-devices', 'default devices exist with the right type and numbers', (t) => {
  const r = inside('stat -c "%n %t:%T" /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty');
  t.equal(r.stdout, '/dev/null 1:3\n/dev/zero 1:5\n/dev/full 1:7\n/dev/random 1:8\n/dev/urandom 1:9\n/dev/tty 5:0\n');
});

check('config-linux.md#default-devices', '/dev/ptmx, /dev/fd and the stdio links; /dev/pts is a new devpts instance with ptmxmode', (t) => {
  const r = inside('for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; stat -c "%a %t:%T" /dev/pts/ptmx; ls /dev/pts | wc -l');
  t.equal(r.stdout, 'pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n666 5:2\n1\n', r.stderr);
});

check('config-linux.md#devices', 'linux.devices are created with type, numbers and mode', (t) => {
  const r = inside('stat -c "%F %t:%T %a %u %g" /dev/fuse-like', (c) => {
    c.linux.devices = [{ type: 'c', path: '/dev/fuse-like', major: 1, minor: 5, fileMode: 0o640, uid: 0, gid: 5 }];
  });
  t.equal(r.stdout.trim(), 'character special file 1:5 640 0 5', r.stderr);
});

check('config.md#mounts', 'a read-only /dev tmpfs is populated first, then read-only', (t) => {
  const r = inside('touch /dev/x 2>/dev/null && echo writable || echo ro; [ -d /dev/pts ] && echo pts; echo ok > /dev/null && echo null; grep " /dev " /proc/self/mountinfo | grep -c " ro,"', (c) => {
    c.mounts = c.mounts.map((m) => (m.destination === '/dev' ? { ...m, options: [...(m.options ?? []), 'ro'] } : m));
  });
  t.equal(r.stdout, 'ro\npts\nnull\n1\n', r.stderr);
});

check('config-linux.md#namespaces', 'a mount namespace left out is inherited: the process runs chrooted in the rootfs, exec too', (t) => {
  if (runtimeName() === 'runc') {
    // runc 1.1 fails ("open /proc/self/fd") without a /proc; with mounts it mounts them on the host
    t.comment('not checked for runc: it needs a /proc in the rootfs here; crun runs it');
    return;
  }
  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  const c = defaultConfig(['sh', '-c', 'ls /; sleep 1000']);
  c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'mount');
  c.mounts = [];
  delete c.linux.maskedPaths;
  delete c.linux.readonlyPaths;
  c.root = { path: 'rootfs', readonly: false }; // a read-only root is a remount: refused without a mount namespace
  const id = sb.id();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  const pid = sb.state(id)!.pid;
  t.equal(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'the mount namespace is the runtime\'s');
  t.equal(readlinkSync(`/proc/${pid}/root`), sb.rootfs, 'its root is the rootfs');
  t.equal(sb.rt(['start', id]).status, 0);
  const e = sb.rt(['exec', id, 'sh', '-c', 'ls /bin/busybox; cat /etc/passwd | head -1']);
  t.equal(e.stdout, '/bin/busybox\nroot:x:0:0:root:/root:/bin/sh\n', `exec is in the same root: ${e.stderr}`);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  t.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'the host\'s mounts are untouched');
});

check('config-linux.md#rootfs-mount-propagation', 'rootfsPropagation shared and unbindable: the container\'s root mount has that type', (t) => {
  // optional fields of the mount at / in the container's own mountinfo
  const probe = 'while read -r id par mm root mp opts rest; do [ "$mp" = / ] && echo "[${rest%%- *}]"; done < /proc/self/mountinfo';
  for (const [v, want] of [['shared', /^\[shared:\d+ \]$/], ['private', /^\[\]$/], ['unbindable', /^\[unbindable \]$/]] as const) {
    if (v !== 'private' && runtimeName() === 'runc') {
      // runc 1.1: unbindable fails (it binds the rootfs onto itself after making / unbindable), shared leaves it private
      t.comment(`not checked for runc: ${v} (runc 1.1 is wrong here by the spec's definitions)`);
      continue;
    }
    const r = inside(probe, (c) => {
      c.linux.rootfsPropagation = v;
    });
    t.match(r.stdout.trim(), want, `${v}: ${r.stdout.trim()} ${r.stderr}`);
  }
});

check('config-linux.md#allowed-device-list', 'a node in linux.devices grants no access: resources.devices alone decides', (t) => {
  // /dev/kmsg exists in the container but the allow list denies it
  const r = inside('(echo x > /dev/kmsg) 2>/dev/null && echo written || echo denied; head -c1 /dev/zero | wc -c', (c) => {
    c.linux.devices = [{ type: 'c', path: '/dev/kmsg', major: 1, minor: 11, fileMode: 0o600, uid: 0, gid: 0 }];
    c.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  });
  t.equal(r.stdout, 'denied\n1\n', r.stderr);
});

check('config-linux.md#masked-paths', 'masked paths read as empty', (t) => {
  const r = inside('cat /proc/timer_list | wc -c', (c) => {
    c.linux.maskedPaths = ['/proc/timer_list'];
  });
  t.equal(r.stdout.trim(), '0');
});

check('config-linux.md#readonly-paths', 'read-only paths cannot be written', (t) => {
  const r = inside('(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo rw || echo ro', (c) => {
    c.linux.readonlyPaths = ['/proc/sys'];
  });
  t.equal(r.stdout.trim(), 'ro');
});

check('config-linux.md#sysctl', 'sysctl values set in the container', (t) => {
  const r = inside('cat /proc/sys/net/ipv4/ip_forward', (c) => {
    c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  });
  t.equal(r.stdout.trim(), '1');
});

check('config-linux.md#cgroups-path', 'the process runs in cgroupsPath', (t) => {
  const r = inside('grep -E "(memory|pids)" /proc/self/cgroup', (c) => {
    c.linux.cgroupsPath = `${sb.cgroupParent}/conf-cg`;
  });
  const lines = r.stdout.trim().split('\n');
  t.ok(lines.length > 0);
  for (const l of lines) t.ok(l.endsWith(`${sb.cgroupParent}/conf-cg`), l);
});

check('config-linux.md#rootfs-mount-propagation', 'mounts made in the container do not reach the host', (t) => {
  const dir = join(sb.dir, 'conf-prop');
  mkdirSync(dir, { recursive: true });
  const r = inside('mount -t tmpfs tmpfs /p && echo mounted', (c) => {
    c.mounts.push({ destination: '/p', type: 'bind', source: dir, options: ['rbind', 'rw'] });
    c.process.capabilities = { bounding: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'], permitted: ['CAP_SYS_ADMIN'] };
  });
  t.equal(r.stdout.trim(), 'mounted', r.stderr);
  t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'the host sees no mount');
});

// ---------------------------------------------------------------- mounts ---
// Every option of config.md's mount table, observed in the container's
// /proc/self/mountinfo (per-mount options, superblock options, optional
// propagation fields). One container mounts a tmpfs per option.

interface MountLine { mnt: string; opts: string[]; optional: string[]; fstype: string; sopts: string[] }
function parseMountinfo(text: string): Map<string, MountLine> {
  const out = new Map<string, MountLine>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    out.set(f[4]!, { mnt: f[4]!, opts: f[5]!.split(','), optional: f.slice(6, sep), fstype: f[sep + 1]!, sopts: (f[sep + 3] ?? '').split(',') });
  }
  return out;
}

const OPTION_CASES: { opts: string[]; want: (m: MountLine) => boolean; desc: string }[] = [
  { opts: ['ro'], want: (m) => m.opts.includes('ro'), desc: 'ro' },
  { opts: ['ro', 'rw'], want: (m) => m.opts.includes('rw'), desc: 'rw after ro' },
  { opts: ['nosuid'], want: (m) => m.opts.includes('nosuid'), desc: 'nosuid' },
  { opts: ['nosuid', 'suid'], want: (m) => !m.opts.includes('nosuid'), desc: 'suid after nosuid' },
  { opts: ['nodev'], want: (m) => m.opts.includes('nodev'), desc: 'nodev' },
  { opts: ['nodev', 'dev'], want: (m) => !m.opts.includes('nodev'), desc: 'dev after nodev' },
  { opts: ['noexec'], want: (m) => m.opts.includes('noexec'), desc: 'noexec' },
  { opts: ['noexec', 'exec'], want: (m) => !m.opts.includes('noexec'), desc: 'exec after noexec' },
  { opts: ['sync'], want: (m) => m.sopts.includes('sync'), desc: 'sync (superblock)' },
  { opts: ['sync', 'async'], want: (m) => !m.sopts.includes('sync'), desc: 'async after sync' },
  { opts: ['dirsync'], want: (m) => m.sopts.includes('dirsync'), desc: 'dirsync (superblock)' },
  { opts: ['noatime'], want: (m) => m.opts.includes('noatime'), desc: 'noatime' },
  { opts: ['noatime', 'atime'], want: (m) => !m.opts.includes('noatime'), desc: 'atime after noatime' },
  { opts: ['nodiratime'], want: (m) => m.opts.includes('nodiratime'), desc: 'nodiratime' },
  { opts: ['nodiratime', 'diratime'], want: (m) => !m.opts.includes('nodiratime'), desc: 'diratime after nodiratime' },
  { opts: ['relatime'], want: (m) => m.opts.includes('relatime'), desc: 'relatime' },
  { opts: ['strictatime'], want: (m) => !m.opts.includes('relatime') && !m.opts.includes('noatime'), desc: 'strictatime' },
  { opts: ['lazytime'], want: (m) => m.sopts.includes('lazytime'), desc: 'lazytime (superblock)' },
  { opts: ['size=1m', 'mode=0710'], want: (m) => m.sopts.includes('size=1024k') && m.sopts.includes('mode=710'), desc: 'filesystem data passed through (tmpfs size, mode)' },
];

let optionMounts: Map<string, MountLine> | undefined;
function optionRun(t: Test): Map<string, MountLine> {
  if (optionMounts) return optionMounts;
  const r = inside('cat /proc/self/mountinfo', (c) => {
    OPTION_CASES.forEach((oc, i) => c.mounts.push({ destination: `/opt${i}`, type: 'tmpfs', source: 'tmpfs', options: oc.opts }));
  });
  t.equal(r.status, 0, r.stderr);
  optionMounts = parseMountinfo(r.stdout);
  return optionMounts;
}

OPTION_CASES.forEach((oc, i) => {
  check('config.md#mounts', `mount option ${oc.desc}`, (t) => {
    const m = optionRun(t).get(`/opt${i}`);
    t.ok(m, `/opt${i} is mounted`);
    if (m) t.ok(oc.want(m), `${oc.opts.join(',')} -> ${m.opts.join(',')} | ${m.sopts.join(',')}`);
  });
});

/** A host directory with a tmpfs submount, for recursive options (unmounted at teardown). */
let recSrc: string | undefined;
function recursiveSource(): string {
  if (recSrc) return recSrc;
  const d = join(sb.dir, 'conf-rec');
  mkdirSync(join(d, 'sub'), { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', join(d, 'sub')]);
  if (r.status !== 0) throw new Error('cannot mount a tmpfs for the recursive cases');
  t.teardown(() => { spawnSync('umount', ['-l', join(d, 'sub')]); });
  recSrc = d;
  return d;
}

const RECURSIVE_CASES: [string, (m: MountLine) => boolean][] = [
  ['rro', (m) => m.opts.includes('ro')],
  ['rnosuid', (m) => m.opts.includes('nosuid')],
  ['rnodev', (m) => m.opts.includes('nodev')],
  ['rnoexec', (m) => m.opts.includes('noexec')],
  ['rnoatime', (m) => m.opts.includes('noatime')],
  ['rnodiratime', (m) => m.opts.includes('nodiratime')],
  ['rstrictatime', (m) => !m.opts.includes('relatime') && !m.opts.includes('noatime')],
  ['rnosymfollow', (m) => m.opts.includes('nosymfollow')],
];
for (const [opt, want] of RECURSIVE_CASES) {
  check('config.md#mounts', `recursive option ${opt} applies to the bind and its submounts`, (t) => {
    const d = recursiveSource();
    const r = inside('cat /proc/self/mountinfo', (c) => {
      c.mounts.push({ destination: '/rec', type: 'bind', source: d, options: ['rbind', opt] });
    });
    t.equal(r.status, 0, r.stderr);
    const mi = parseMountinfo(r.stdout);
    for (const p of ['/rec', '/rec/sub']) {
      const m = mi.get(p);
      t.ok(m && want(m), `${p}: ${m?.opts.join(',')}`);
    }
  });
}

check('config.md#mounts', 'rbind takes submounts along, bind does not', (t) => {
  const d = recursiveSource();
  const r = inside('cat /proc/self/mountinfo', (c) => {
    c.mounts.push({ destination: '/rb', type: 'bind', source: d, options: ['rbind'] });
    c.mounts.push({ destination: '/b', type: 'bind', source: d, options: ['bind'] });
  });
  const mi = parseMountinfo(r.stdout);
  t.ok(mi.has('/rb/sub'), 'rbind: submount present');
  t.notOk(mi.has('/b/sub'), 'bind: no submount');
});

check('config.md#mounts', 'a read-only bind is bound then remounted: ro applies to the bind only, not the source', (t) => {
  const d = join(sb.dir, 'conf-robind');
  mkdirSync(d, { recursive: true });
  const r = inside('cat /proc/self/mountinfo', (c) => {
    c.mounts.push({ destination: '/ro', type: 'bind', source: d, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] });
  });
  const m = parseMountinfo(r.stdout).get('/ro');
  t.ok(m, 'mounted');
  for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) t.ok(m?.opts.includes(o), o);
  writeFileSync(join(d, 'still-writable'), 'x');
  t.ok(existsSync(join(d, 'still-writable')), 'the host source stays writable');
});

check('config.md#mounts', 'bind of a single file creates a file mount point', (t) => {
  const f = join(sb.dir, 'conf-file');
  writeFileSync(f, 'file-content\n');
  const r = inside('cat /newdir/thefile; [ -f /newdir/thefile ] && echo isfile', (c) => {
    c.mounts.push({ destination: '/newdir/thefile', type: 'bind', source: f, options: ['bind'] });
  });
  t.equal(r.stdout, 'file-content\nisfile\n', r.stderr);
});

const PROPAGATION_CASES: [string, (m: MountLine) => boolean][] = [
  ['shared', (m) => m.optional.some((o) => o.startsWith('shared:'))],
  ['private', (m) => m.optional.length === 0],
  ['unbindable', (m) => m.optional.includes('unbindable')],
];
for (const [opt, want] of PROPAGATION_CASES) {
  check('config.md#mounts', `propagation option ${opt} on a mount`, (t) => {
    const r = inside('cat /proc/self/mountinfo', (c) => {
      c.mounts.push({ destination: '/pm', type: 'tmpfs', source: 'tmpfs', options: [opt] });
    });
    t.equal(r.status, 0, r.stderr);
    const m = parseMountinfo(r.stdout).get('/pm');
    t.ok(m && want(m), `optional fields: ${m?.optional.join(' ')}`);
  });
}

/**
 * A host directory that is a shared mount (its own bind), for propagation
 * seen from the host. The container gets it with `rshared`/`rslave`/`rprivate`
 * and rootfsPropagation to match; CAP_SYS_ADMIN lets it mount under it.
 */
function sharedHostDir(name: string): string {
  const d = join(sb.dir, name);
  mkdirSync(d, { recursive: true });
  spawnSync('mount', ['--bind', d, d]);
  spawnSync('mount', ['--make-shared', d]);
  t.teardown(() => { spawnSync('umount', ['-R', '-l', d]); });
  return d;
}
function hostMounts(): Map<string, MountLine> {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}
const ADMIN = { bounding: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'], permitted: ['CAP_SYS_ADMIN'] };

check('config-linux.md#rootfs-mount-propagation', 'rshared: a mount the container makes under a shared bind reaches the host', (t) => {
  const d = sharedHostDir('conf-rshared');
  mkdirSync(join(d, 'in'));
  const r = inside('mount -t tmpfs tmpfs /sh/in && echo mounted', (c) => {
    c.mounts.push({ destination: '/sh', type: 'bind', source: d, options: ['rbind', 'rshared'] });
    c.linux.rootfsPropagation = 'rshared';
    c.process.capabilities = ADMIN;
  });
  t.equal(r.stdout.trim(), 'mounted', r.stderr);
  t.equal(hostMounts().get(join(d, 'in'))?.fstype, 'tmpfs', 'the host sees the tmpfs');
  spawnSync('umount', ['-l', join(d, 'in')]);
});

for (const prop of ['rslave', 'rprivate']) {
  check('config-linux.md#rootfs-mount-propagation', `${prop}: a mount the container makes does not reach the host`, (t) => {
    const d = sharedHostDir(`conf-${prop}`);
    mkdirSync(join(d, 'in'));
    const r = inside('mount -t tmpfs tmpfs /sh/in && echo mounted', (c) => {
      c.mounts.push({ destination: '/sh', type: 'bind', source: d, options: ['rbind', prop] });
      c.linux.rootfsPropagation = prop;
      c.process.capabilities = ADMIN;
    });
    t.equal(r.stdout.trim(), 'mounted', r.stderr);
    t.notOk(hostMounts().has(join(d, 'in')), 'the host sees nothing');
  });
}

for (const [prop, seen] of [['rslave', true], ['rprivate', false]] as const) {
  check('config-linux.md#rootfs-mount-propagation', `${prop}: a host mount made after start is ${seen ? '' : 'not '}seen in the container`, (t) => {
    const d = sharedHostDir(`conf-${prop}-in`);
    mkdirSync(join(d, 'late'));
    const go = join(sb.dir, `conf-go-${prop}`);
    mkdirSync(go);
    const c = defaultConfig(['sh', '-c', 'while [ ! -e /go-dir/go ]; do sleep 0.05; done; grep -c " /sh/late " /proc/self/mountinfo > /go-dir/out; true']);
    c.mounts.push({ destination: '/sh', type: 'bind', source: d, options: ['rbind', prop] });
    c.mounts.push({ destination: '/go-dir', type: 'bind', source: go, options: ['rbind'] });
    c.linux.rootfsPropagation = prop;
    const id = sb.id();
    t.equal(sb.rt(['create', '--bundle', sb.bundle(c), id]).status, 0);
    t.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', join(d, 'late')]).status, 0);
    t.equal(sb.rt(['start', id]).status, 0);
    writeFileSync(join(go, 'go'), '');
    t.ok(waitFor(() => sb.state(id)?.status === 'stopped'));
    spawnSync('umount', ['-l', join(d, 'late')]);
    t.equal(sb.rt(['delete', id]).status, 0);
    const out = join(go, 'out');
    t.equal(readFileSync(out, 'utf8').trim(), seen ? '1' : '0');
  });
}

check('config.md#mounts', 'overlay mount type with filesystem data (lowerdir, upperdir, workdir)', (t) => {
  const base = join(sb.dir, 'conf-overlay');
  for (const d of ['lower', 'upper', 'work']) mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'lower', 'from-lower'), 'L\n');
  const r = inside('cat /ov/from-lower; echo U > /ov/new; grep " /ov " /proc/self/mountinfo | grep -o " - overlay "', (c) => {
    c.mounts.push({ destination: '/ov', type: 'overlay', source: 'overlay', options: [`lowerdir=${join(base, 'lower')}`, `upperdir=${join(base, 'upper')}`, `workdir=${join(base, 'work')}`] });
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'L\n - overlay \n');
  t.equal(readFileSync(join(base, 'upper', 'new'), 'utf8'), 'U\n', 'writes land in upperdir');
});
