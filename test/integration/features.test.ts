// Each named feature of the core observed from inside a real container:
// namespaces, hostname, ids, capabilities, rlimits, env, cwd, mounts, /dev,
// masked/readonly paths, sysctl, oom_score_adj, hooks and their order.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, readlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { REQUIRE_ALL, Sandbox, defaultConfig, type Config } from '../lib/harness';

const sb = new Sandbox('feat');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

function sh(script: string, mod?: (c: Config) => void) {
  const c = defaultConfig(['sh', '-c', script]);
  mod?.(c);
  const r = sb.run(c);
  return r;
}

t.test('pid 1 in a new pid namespace; namespaces differ from the host', async (t) => {
  const r = sh('echo $$; for n in pid net ipc uts mnt user cgroup; do echo $n $(readlink /proc/self/ns/$n); done');
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[0], '1');
  const ns = Object.fromEntries(lines.slice(1).map((l) => l.split(' ') as [string, string]));
  for (const n of ['pid', 'net', 'ipc', 'uts', 'mnt']) {
    t.not(ns[n], readlinkSync(`/proc/self/ns/${n}`), `${n} namespace is new`);
  }
  t.equal(ns.user, readlinkSync('/proc/self/ns/user'), 'user namespace inherited when not asked for');
});

t.test('joining a namespace by path', async (t) => {
  // a process of our own holds a fresh network and uts namespace
  const holder = spawn('unshare', ['--net', '--uts', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  const want = readlinkSync(`/proc/${holder.pid}/ns/net`);
  t.not(want, readlinkSync('/proc/self/ns/net'));
  const r = sh('readlink /proc/self/ns/net', (c) => {
    c.linux.namespaces = c.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: `/proc/${holder.pid}/ns/net` } : n));
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), want);
});

t.test('user namespace with uid/gid mappings', async (t) => {
  const r = sh('cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; stat -c %u:%g /dev/null', (c) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.trim().split('\n').map((s) => s.trim().replace(/\s+/g, ' '));
  t.equal(l[0], '0 100000 65536');
  t.equal(l[1], '0 100000 65536');
  t.equal(l[2], '0');
  t.equal(l[3], '0');
});

t.test('user namespace: a bind source the container\'s root cannot reach still mounts (cloned before the user namespace, as runc)', async (t) => {
  const { mkdirSync } = await import('node:fs');
  const secret = join(sb.dir, 'secret-0700');
  mkdirSync(secret, { mode: 0o700 });
  chmodSync(secret, 0o700);
  writeFileSync(join(secret, 'data'), 'reached\n', { mode: 0o644 });
  // onto a file that exists: the userns root cannot create a mount point in the shared rootfs
  const r = sh('cat /etc/passwd', (c) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.mounts.push({ destination: '/etc/passwd', type: 'bind', source: join(secret, 'data'), options: ['bind', 'ro'] });
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'reached\n');
});

t.test('hostname and domainname', async (t) => {
  const r = sh('hostname; cat /proc/sys/kernel/domainname', (c) => {
    c.hostname = 'box-a';
    c.domainname = 'example.org';
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'box-a\nexample.org\n');
});

t.test('user, groups, umask', async (t) => {
  const r = sh('id -u; id -g; id -G; umask', (c) => {
    c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 65534], umask: 0o077 };
  });
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.trim().split('\n');
  t.equal(l[0], '1000');
  t.equal(l[1], '1000');
  t.same(l[2]!.split(' ').sort(), ['1000', '5', '65534'].sort());
  t.equal(l[3], '0077');
});

t.test('capabilities: all five sets from /proc/self/status', async (t) => {
  const r = sh('grep ^Cap /proc/self/status', (c) => {
    c.process.capabilities = {
      bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'],
      effective: ['CAP_CHOWN', 'CAP_KILL'],
      permitted: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'],
      inheritable: ['CAP_KILL'],
      ambient: ['CAP_KILL'],
    };
  });
  t.equal(r.status, 0, r.stderr);
  const caps = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/) as [string, string]));
  // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_RAW=13; with an ambient cap the exec keeps it effective
  t.equal(caps.CapBnd, (1 + (1 << 5) + (1 << 13)).toString(16).padStart(16, '0'));
  // uid 0 exec: the new permitted set is the bounding set (file caps count as full)
  t.equal(caps.CapPrm, (1 + (1 << 5) + (1 << 13)).toString(16).padStart(16, '0'));
  t.equal(caps.CapInh, (1 << 5).toString(16).padStart(16, '0'));
  t.equal(caps.CapAmb, (1 << 5).toString(16).padStart(16, '0'));
});

t.test('no capabilities and no_new_privs by default config', async (t) => {
  const r = sh('grep -E "^(CapInh|CapAmb|NoNewPrivs)" /proc/self/status');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /CapInh:\s+0000000000000000/);
  t.match(r.stdout, /CapAmb:\s+0000000000000000/);
  t.match(r.stdout, /NoNewPrivs:\s+1/);
});

t.test('rlimits', async (t) => {
  const r = sh('ulimit -n; ulimit -Hn; ulimit -c', (c) => {
    c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 768 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }];
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '512\n768\n0\n');
});

t.test('env, cwd, args with PATH lookup', async (t) => {
  const r = sh('echo "$FOO|$BAR"; pwd', (c) => {
    c.process.env.push('FOO=one two', 'BAR=');
    c.process.cwd = '/etc';
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'one two|\n/etc\n');
  const r2 = sb.run(defaultConfig(['/bin/echo', 'abs']));
  t.equal(r2.stdout, 'abs\n');
});

t.test('read-only root, mounts, /dev devices and links', async (t) => {
  const r = sh([
    'touch /x 2>/dev/null && echo rootfs-writable || echo rootfs-ro',
    'touch /dev/shm/x && echo shm-writable',
    'stat -c "%n %F %t:%T %a" /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty',
    'for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done',
    'grep -E " /(proc|sys|dev|dev/pts|dev/shm|dev/mqueue) " /proc/self/mountinfo | awk \'{for(i=1;i<=NF;i++) if($i=="-") print $5, $(i+1)}\'',
  ].join('; '));
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /rootfs-ro/);
  t.match(r.stdout, /shm-writable/);
  for (const [n, mm] of [['null', '1:3'], ['zero', '1:5'], ['full', '1:7'], ['random', '1:8'], ['urandom', '1:9'], ['tty', '5:0']]) {
    t.match(r.stdout, new RegExp(`/dev/${n} character special file ${mm} 666`), `/dev/${n}`);
  }
  t.match(r.stdout, /\/proc\/self\/fd\n\/proc\/self\/fd\/0\n\/proc\/self\/fd\/1\n\/proc\/self\/fd\/2\npts\/ptmx/);
  for (const [m, ty] of [['/proc', 'proc'], ['/sys', 'sysfs'], ['/dev', 'tmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs'], ['/dev/mqueue', 'mqueue']]) {
    t.match(r.stdout, new RegExp(`^${m} ${ty}$`, 'm'), `${m} is ${ty}`);
  }
});

t.test('bind mounts of a directory and a file, read-only', async (t) => {
  const data = join(sb.dir, 'data');
  require('node:fs').mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'f'), 'from-host\n');
  const r = sh('cat /mnt/d/f; cat /etc/hostfile; touch /mnt/d/g 2>&1 | grep -o "Read-only"', (c) => {
    c.mounts.push({ destination: '/mnt/d', type: 'bind', source: data, options: ['rbind', 'ro'] });
    c.mounts.push({ destination: '/etc/hostfile', type: 'bind', source: join(data, 'f'), options: ['bind'] });
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'from-host\nfrom-host\nRead-only\n');
  t.notOk(existsSync(join(data, 'g')));
});

function idmapSource(name: string): string {
  const fs = require('node:fs');
  const d = join(sb.dir, name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(join(d, 'a'), 'a');
  fs.writeFileSync(join(d, 'b'), 'b');
  fs.chownSync(join(d, 'b'), 1000, 1000);
  return d;
}

t.test('in a user namespace, devices are bind-mounted from the host (mknod is not allowed there)', async (t) => {
  const r = sh('stat -c "%n %F %t:%T" /dev/null /dev/zero /dev/kmsg; echo x > /dev/null && echo writable; grep -c " /dev/null " /proc/self/mountinfo', (c) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.devices = [{ type: 'c', path: '/dev/kmsg', major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 }];
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '/dev/null character special file 1:3\n/dev/zero character special file 1:5\n/dev/kmsg character special file 1:b\nwritable\n1\n');
});

t.test('idmap: a bind takes the container user namespace mapping', async (t) => {
  const d = idmapSource('idmap-ns');
  // the container root (host 100000) cannot create mount points in the host-owned rootfs
  for (const m of ['m', 'plain']) require('node:fs').mkdirSync(join(sb.rootfs, m), { recursive: true });
  const r = sh('stat -c %u:%g /m/a /m/b /plain/a; touch /m/new && stat -c %u:%g /m/new', (c) => {
    c.linux.namespaces.push({ type: 'user' });
    c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.mounts.push({ destination: '/m', type: 'bind', source: d, options: ['bind', 'idmap'] });
    c.mounts.push({ destination: '/plain', type: 'bind', source: d, options: ['bind', 'ro'] });
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '0:0\n1000:1000\n65534:65534\n0:0\n', 'owners seen through the mapping; the plain bind shows overflow ids');
  const st = require('node:fs').statSync(join(d, 'new'));
  t.same([st.uid, st.gid], [0, 0], 'a file the container root creates is owned by host 0 on disk');
});

t.test('idmap: a mount with its own uidMappings/gidMappings, no user namespace', async (t) => {
  const d = idmapSource('idmap-own');
  const r = sh('stat -c %u:%g /m/a /m/b', (c) => {
    c.mounts.push({
      destination: '/m', type: 'bind', source: d, options: ['rbind', 'ro'],
      uidMappings: [{ containerID: 0, hostID: 5000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 6000, size: 1 }],
    } as Config['mounts'][0]);
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '5000:6000\n65534:65534\n', 'disk 0 shows as 5000:6000, an unmapped owner as the overflow id');
});

t.test('ridmap maps submounts too, idmap only the top', async (t) => {
  const d = idmapSource('idmap-rec');
  const sub = join(d, 'sub');
  require('node:fs').mkdirSync(sub);
  const { spawnSync } = require('node:child_process');
  t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', sub]).status, 0);
  t.teardown(() => { spawnSync('umount', ['-l', sub]); });
  require('node:fs').writeFileSync(join(sub, 's'), 's');
  const maps = { uidMappings: [{ containerID: 0, hostID: 7000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 7000, size: 1 }] };
  const r = sh('stat -c %u /r/a /r/sub/s /i/a /i/sub/s', (c) => {
    c.mounts.push({ destination: '/r', type: 'bind', source: d, options: ['rbind', 'ridmap'], ...maps } as Config['mounts'][0]);
    c.mounts.push({ destination: '/i', type: 'bind', source: d, options: ['rbind', 'idmap'], ...maps } as Config['mounts'][0]);
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '7000\n7000\n7000\n0\n');
});

t.test('masked and read-only paths; missing ones skipped', async (t) => {
  const r = sh('cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/domainname) 2>&1 | grep -o Read-only', (c) => {
    c.linux.maskedPaths!.push('/does/not/exist');
    c.linux.readonlyPaths!.push('/nor/this');
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '0\n0\nRead-only\n');
});

t.test('sysctl and oomScoreAdj', async (t) => {
  const r = sh('cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/oom_score_adj', (c) => {
    c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
    c.process.oomScoreAdj = 123;
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '1\n123\n');
});

t.test('cgroup: the container runs in its cgroupsPath in every hierarchy', async (t) => {
  const r = sh('cat /proc/self/cgroup', (c) => {
    c.linux.cgroupsPath = `${sb.cgroupParent}/cg1`;
  });
  t.equal(r.status, 0, r.stderr);
  for (const line of r.stdout.trim().split('\n')) {
    t.ok(line.endsWith(`${sb.cgroupParent}/cg1`), line);
  }
});

t.test('hooks: order, namespaces, state on stdin, env', async (t) => {
  const log = join(sb.dir, 'hooks.log');
  const hook = join(sb.dir, 'hook.sh');
  writeFileSync(hook, `#!/bin/sh\nstate=$(cat)\necho "$1 $(readlink /proc/self/ns/mnt) $HOOKVAR $state" >> ${log}\n`);
  chmodSync(hook, 0o755);
  const h = (name: string) => [{ path: hook, args: ['hook.sh', name], env: [`HOOKVAR=v-${name}`] }];
  const id = sb.id();
  const c = defaultConfig(['sh', '-c', 'echo ran']);
  c.hooks = {
    prestart: h('prestart'), createRuntime: h('createRuntime'), createContainer: h('createContainer'),
    poststart: h('poststart'), poststop: h('poststop'),
  };
  c.annotations = { 'org.example.key': 'value' };
  const b = sb.bundle(c);
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const lines1 = readFileSync(log, 'utf8').trim().split('\n');
  t.same(lines1.map((l) => l.split(' ')[0]), ['prestart', 'createRuntime', 'createContainer']);
  const hostMnt = readlinkSync('/proc/self/ns/mnt');
  t.equal(lines1[0]!.split(' ')[1], hostMnt, 'prestart runs in the runtime namespace');
  t.equal(lines1[1]!.split(' ')[1], hostMnt, 'createRuntime runs in the runtime namespace');
  t.not(lines1[2]!.split(' ')[1], hostMnt, 'createContainer runs in the container namespace');
  t.equal(lines1[1]!.split(' ')[2], 'v-createRuntime', 'hook env');
  const st = JSON.parse(lines1[1]!.split(' ').slice(3).join(' '));
  t.equal(st.id, id);
  t.equal(st.status, 'created', 'after step 2 of the lifecycle the spec calls it created (runc says creating)');
  t.ok(st.pid > 0);
  t.equal(st.bundle, b);
  t.same(st.annotations, { 'org.example.key': 'value' });
  t.equal(sb.rt(['start', id]).status, 0);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.same(lines.map((l) => l.split(' ')[0]), ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
  t.equal(JSON.parse(lines[4]!.split(' ').slice(3).join(' ')).status, 'stopped');
});

t.test('startContainer hook runs in the container before the process', async (t) => {
  const c = defaultConfig(['cat', '/dev/shm/hook-out']);
  c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > /dev/shm/hook-out'] }] };
  const r = sb.run(c);
  t.equal(r.status, 0, r.stderr);
  const st = JSON.parse(r.stdout);
  t.equal(st.id, r.id);
  t.equal(st.status, 'created');
});

t.test('--preserve-fds passes fds 3.. to the container', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'cat <&3']));
  const f = join(sb.dir, 'pfd');
  writeFileSync(f, 'preserved\n');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const fd = require('node:fs').openSync(f, 'r');
  const r = spawnSync(sb.bin, ['--root', sb.root, 'run', '--preserve-fds', '1', '--bundle', b, id], {
    stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8',
  });
  t.equal(r.stdout, 'preserved\n', r.stderr);
  t.equal(r.status, 0);
});

t.test('socket activation: LISTEN_FDS for us go first, then --preserve-fds; the container sees LISTEN_PID=1', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'echo "$LISTEN_FDS $LISTEN_PID"; cat <&3; cat <&4']));
  const f1 = join(sb.dir, 'listen-fd');
  const f2 = join(sb.dir, 'preserved-fd');
  writeFileSync(f1, 'listen\n');
  writeFileSync(f2, 'preserved\n');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const fs = require('node:fs') as typeof import('node:fs');
  const fd1 = fs.openSync(f1, 'r');
  const fd2 = fs.openSync(f2, 'r');
  // exec keeps the pid: LISTEN_PID is tsrun's, as systemd would set it
  const r = spawnSync('sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', sb.bin, '--root', sb.root, 'run', '--preserve-fds', '1', '--bundle', b, id], {
    stdio: ['ignore', 'pipe', 'pipe', fd1, fd2], encoding: 'utf8',
  });
  t.equal(r.stdout, '1 1\nlisten\npreserved\n', r.stderr);
  t.equal(r.status, 0);
  // LISTEN_PID of another process: not ours, nothing passed
  const id2 = sb.id();
  const r2 = spawnSync(sb.bin, ['--root', sb.root, 'run', '--bundle', sb.bundle(defaultConfig(['sh', '-c', 'echo "[$LISTEN_FDS]"; ls /proc/self/fd | wc -l'])), id2], {
    stdio: ['ignore', 'pipe', 'pipe', fd1], encoding: 'utf8', env: { ...process.env, LISTEN_PID: '1', LISTEN_FDS: '1' },
  });
  t.equal(r2.stdout, '[]\n4\n', 'only stdio (+ the fd ls opens)');
});

t.test('no host fd leaks into the container', async (t) => {
  const r = sh('ls /proc/self/fd | sort -n | tr "\\n" " "');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), '0 1 2 3', 'only stdio (3 is ls reading the directory)');
});

t.test('time namespace with offsets', async (t) => {
  const r = sh('cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime', (c) => {
    c.linux.namespaces.push({ type: 'time' });
    c.linux.timeOffsets = { monotonic: { secs: 86400, nanosecs: 0 }, boottime: { secs: 172800, nanosecs: 0 } };
  });
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.trim().split('\n').map((x) => x.trim().replace(/\s+/g, ' '));
  t.equal(l[0], 'monotonic 86400 0');
  t.equal(l[1], 'boottime 172800 0');
  const hostUp = Number(readFileSync('/proc/uptime', 'utf8').split('.')[0]);
  t.ok(Number(l[2]) >= hostUp + 172800 - 5, `uptime ${l[2]} includes the boottime offset`);
});

t.test('cgroup mount with a cgroup namespace shows the container cgroup as its root', async (t) => {
  const r = sh('cat /proc/self/cgroup | grep memory; ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/cgroup.procs | wc -l', (c) => {
    c.linux.namespaces.push({ type: 'cgroup' });
    c.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
  });
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.trim().split('\n');
  t.match(l[0], /:memory:\/$/, 'the namespace root is the container cgroup');
  t.ok(l.includes('memory') && l.includes('pids') && l.includes('unified'), l.join(' '));
  t.ok(Number(l[l.length - 1]) >= 1, 'the container\'s own processes are in it');
});

t.test('state JSON matches the state schema', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const v = require(join(__dirname, '..', '..', 'lib', '_build', 'validators.cjs')).state;
  const id = sb.id();
  t.equal(sb.rt(['create', '--bundle', sb.bundle(defaultConfig(['true'])), id]).status, 0);
  const st = sb.state(id);
  t.ok(v(st), JSON.stringify(v.errors));
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('--no-pivot: the rootfs is moved onto / and chrooted (for ramfs roots)', async (t) => {
  const c = defaultConfig(['sh', '-c', 'echo $(hostname) $(id -u); ls /bin/busybox; [ -d /proc/1 ] && echo proc']);
  const id = sb.id();
  const r = sb.rt(['run', '--no-pivot', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'tsrun-test 0\n/bin/busybox\nproc\n');
});

t.test('personality, ioPriority, scheduler, execCPUAffinity', async (t) => {
  const r = sh('uname -m; ionice -p $$; awk \'{print $19, $41}\' /proc/self/stat; grep Cpus_allowed_list /proc/self/status', (c) => {
    c.linux.personality = { domain: 'LINUX32' };
    (c.process as Record<string, unknown>).ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 };
    (c.process as Record<string, unknown>).scheduler = { policy: 'SCHED_BATCH', nice: 5 };
    (c.process as Record<string, unknown>).execCPUAffinity = { initial: '0-1', final: '0' };
  });
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.split('\n');
  t.equal(l[0], 'i686', 'LINUX32 persona');
  t.match(l[1], /best-effort: prio 6/);
  t.equal(l[2], '5 3', 'nice 5, SCHED_BATCH (3)');
  t.equal(l[3], readFileSync('/proc/self/status', 'utf8').split('\n').find((x) => x.startsWith('Cpus_allowed_list')), 'the init keeps the runtime\'s affinity: execCPUAffinity is not for it (spec)');
  t.match(r.stderr, /process\.execCPUAffinity applies to processes started by exec, not to the container's init/);
});

t.test('execCPUAffinity: exec runs the process on initial, then final (the container config\'s, or --process\'s)', async (t) => {
  const c = defaultConfig(['sleep', '1000']);
  (c.process as Record<string, unknown>).execCPUAffinity = { initial: '0-1', final: '0' };
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(c), id]).status, 0);
  let r = sb.rt(['exec', id, 'grep', 'Cpus_allowed_list', '/proc/self/status']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Cpus_allowed_list:\s+0\n$/, 'the final affinity, from config.json\'s process');
  const proc = join(sb.dir, 'aff-process.json');
  writeFileSync(proc, JSON.stringify({ ...c.process, args: ['grep', 'Cpus_allowed_list', '/proc/self/status'], execCPUAffinity: { initial: '1' } }));
  r = sb.rt(['exec', '--process', proc, id]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Cpus_allowed_list:\s+1\n$/, 'the initial affinity stays when there is no final one');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('CVE-2022-29162 and no_new_privs: no capability or uid is gained that was not given', async (t) => {
  const { copyFileSync, chmodSync, mkdirSync } = require('node:fs') as typeof import('node:fs');
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const dir = join(sb.dir, 'suid');
  mkdirSync(dir);
  const probe = join(dir, 'sysprobe');
  const b = spawnSync('cc', ['-O2', '-static', '-o', probe, join(__dirname, '..', 'helpers', 'sysprobe.c')], { encoding: 'utf8' });
  t.equal(b.status, 0, b.stderr);
  chmodSync(probe, 0o4755); // setuid root
  void copyFileSync;
  const run = (nnp: boolean) => sh('grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status | tr -s "\\t " " "; /suid/sysprobe 107', (c) => {
    c.process.user = { uid: 1000, gid: 1000 };
    c.process.noNewPrivileges = nnp;
    c.process.capabilities = { bounding: ['CAP_NET_BIND_SERVICE'], effective: [], permitted: [] };
    c.mounts.push({ destination: '/suid', type: 'bind', source: dir, options: ['rbind', 'ro', 'suid'] });
  });
  const r = run(true);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'CapInh: 0000000000000000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: 0000000000000400\nCapAmb: 0000000000000000\nret=1000 errno=0\n',
    'inheritable and ambient empty; a setuid-root program runs with euid 1000 under no_new_privs');
  const without = run(false);
  t.match(without.stdout, /ret=0 errno=0\n$/, 'without no_new_privs the same program does become euid 0 (the check above can fail)');
});

t.test('spec and spec --rootless write what runc spec writes (but ociVersion and hostname)', { skip: !existsSync('/usr/sbin/runc') && !REQUIRE_ALL && 'runc is not installed (apt-get install runc)' }, async (t) => {
  const { mkdirSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  for (const extra of [[], ['--rootless']]) {
    const dirs = ['runc', 'tsrun'].map((n) => join(sb.dir, `spec-${n}${extra.join('')}`));
    for (const d of dirs) mkdirSync(d);
    t.equal(spawnSync('/usr/sbin/runc', ['spec', ...extra], { cwd: dirs[0] }).status, 0);
    t.equal(sb.rt(['spec', ...extra], { cwd: dirs[1] }).status, 0);
    const [r, ours] = dirs.map((d) => JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')));
    for (const o of [r, ours]) {
      delete o.ociVersion;
      delete o.hostname;
    }
    t.same(ours, r, `spec ${extra.join(' ')}`);
  }
});

t.test('joining a mount namespace by path: the process is in it, chrooted to the rootfs', async (t) => {
  const { spawn: sp } = await import('node:child_process');
  const holder = sp('unshare', ['-m', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  const ns = `/proc/${holder.pid}/ns/mnt`;
  for (let i = 0; i < 100 && readlinkSync(ns) === readlinkSync('/proc/self/ns/mnt'); i++) await new Promise((r) => setTimeout(r, 10));
  const c = defaultConfig(['sh', '-c', 'ls /bin/busybox']);
  c.linux.namespaces = c.linux.namespaces.map((n) => (n.type === 'mount' ? { type: 'mount', path: ns } : n));
  c.mounts = [];
  delete c.linux.maskedPaths;
  delete c.linux.readonlyPaths;
  c.root = { path: 'rootfs', readonly: false };
  const id = sb.id();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  const pid = sb.state(id)!.pid;
  t.equal(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync(ns), 'in the joined namespace');
  t.equal(readlinkSync(`/proc/${pid}/root`), sb.rootfs);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  const m = defaultConfig(['true']);
  m.linux.namespaces = m.linux.namespaces.map((n) => (n.type === 'mount' ? { type: 'mount', path: ns } : n));
  const bad = sb.run(m);
  t.match(bad.stderr, /^tsrun: config\.json: mounts: needs a mount namespace of the container's own/, 'mounts into a joined namespace are refused');
  holder.kill('SIGKILL');
});

t.test('rootfsPropagation observed from the host: slave and the default receive host mounts, private does not', async (t) => {
  const { mkdirSync, cpSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  // a shared mount of the test's own, holding a rootfs (this host's / is private)
  const d = join(sb.dir, 'shared-holder');
  mkdirSync(d);
  t.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', d]).status, 0);
  t.teardown(() => {
    spawnSync('umount', ['-R', d]);
  });
  t.equal(spawnSync('mount', ['--make-shared', d]).status, 0);
  cpSync(sb.rootfs, join(d, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  const probe = join(d, 'rootfs', 'mnt', 'probe');
  mkdirSync(probe, { recursive: true });
  for (const [v, sees] of [['slave', 1], ['rslave', 1], [undefined, 1], ['private', 0], ['rprivate', 0]] as const) {
    const c = defaultConfig(['sleep', '1000']);
    c.root = { path: join(d, 'rootfs'), readonly: false };
    if (v) c.linux.rootfsPropagation = v;
    const id = sb.id();
    const r = sb.rt(['run', '-d', '--bundle', sb.bundle(c), id]);
    t.equal(r.status, 0, r.stderr);
    t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'probe', probe]).status, 0);
    const e = sb.rt(['exec', id, 'sh', '-c', 'grep -c " /mnt/probe " /proc/self/mountinfo']);
    t.equal(e.stdout.trim(), String(sees), `${v ?? 'default (rslave)'}: a host mount under the rootfs ${sees ? 'appears' : 'does not appear'} in the container`);
    spawnSync('umount', [probe]);
    t.equal(sb.rt(['delete', '--force', id]).status, 0);
  }
  spawnSync('umount', ['-R', d]);
  t.same(sb.leaks(), []);
});

t.test('features says what the code does: rdma limits are applied, the systemd driver is not there', async (t) => {
  const f = JSON.parse(sb.rt(['features']).stdout);
  t.same(f.linux.cgroup, { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true });
  t.equal(f.ociVersionMax, '1.3.0');
});
