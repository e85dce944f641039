// linux.resources on this host's cgroup v1 controllers: values read back from
// the cgroup files, and the kernel enforcing the important ones.
import t from 'tap';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Sandbox, defaultConfig, type Config } from '../lib/harness';

const sb = new Sandbox('res');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const cg = (ctrl: string, path: string, file: string) => readFileSync(join('/sys/fs/cgroup', ctrl, path, file), 'utf8').trim();

function created(mod: (c: Config) => void, tag = 'r') {
  const id = sb.id(tag);
  const c = defaultConfig(['sleep', '1000']);
  c.linux.cgroupsPath = `${sb.cgroupParent}/${id}`;
  mod(c);
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  return { id, r, path: c.linux.cgroupsPath };
}

t.test('values land in the v1 controller files', async (t) => {
  const { id, r, path } = created((c) => {
    c.linux.resources = {
      memory: { limit: 64 << 20, reservation: 32 << 20, swappiness: 10 },
      cpu: { shares: 512, quota: 20000, period: 100000, cpus: '0', mems: '0' },
      pids: { limit: 42 },
      blockIO: { weight: 300 },
    };
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(cg('memory', path, 'memory.limit_in_bytes'), String(64 << 20));
  t.equal(cg('memory', path, 'memory.soft_limit_in_bytes'), String(32 << 20));
  t.equal(cg('memory', path, 'memory.swappiness'), '10');
  t.equal(cg('cpu', path, 'cpu.shares'), '512');
  t.equal(cg('cpu', path, 'cpu.cfs_quota_us'), '20000');
  t.equal(cg('cpu', path, 'cpu.cfs_period_us'), '100000');
  t.equal(cg('cpuset', path, 'cpuset.cpus'), '0');
  t.equal(cg('pids', path, 'pids.max'), '42');
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('a fork bomb stops at pids.limit', async (t) => {
  const c = defaultConfig(['sh', '-c', 'n=0; for i in $(seq 30); do sleep 5 & n=$((n+1)); done 2>/dev/null; echo started; ps | wc -l']);
  c.linux.resources = { pids: { limit: 8 } };
  const r = sb.run(c);
  const procs = Number(r.stdout.trim().split('\n').pop());
  t.ok(procs <= 9, `at most 8 processes (+ header line): ${procs}`);
});

t.test('a memory hog is OOM-killed under its limit', async (t) => {
  const c = defaultConfig(['sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived ${#x}']);
  c.linux.resources = { memory: { limit: 16 << 20 } };
  const r = sb.run(c);
  t.notMatch(r.stdout, /survived/, 'dd did not get its 64 MB buffer');
});

t.test('devices: a device not in the allow list cannot be opened', async (t) => {
  const c = defaultConfig(['sh', '-c', 'head -c1 /dev/zero >/dev/null && echo zero-ok; head -c1 /dev/urandom > /dev/null 2>&1 && echo urandom-ok || echo urandom-denied']);
  c.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }] };
  // urandom is in runc's default allow list: deny it after the defaults via a linux.devices-free config
  const r = sb.run(c);
  t.match(r.stdout, /zero-ok/);
  const c2 = defaultConfig(['sh', '-c', 'mknod /dev/shm/sda b 8 0 && head -c1 /dev/shm/sda >/dev/null 2>&1 && echo read-ok || echo read-denied']);
  c2.process.capabilities = { bounding: ['CAP_MKNOD'], effective: ['CAP_MKNOD'], permitted: ['CAP_MKNOD'] };
  c2.mounts = c2.mounts.map((m) => (m.destination === '/dev/shm' ? { ...m, options: ['nosuid', 'noexec', 'mode=1777'] } : m));
  c2.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  const r2 = sb.run(c2);
  t.match(r2.stdout, /read-denied/, r2.stderr);
});

t.test('devices access: runc\'s reading (r, w, m count; other letters warned and ignored; "" refused)', async (t) => {
  const c = defaultConfig(['sh', '-c', 'head -c1 /dev/urandom >/dev/null 2>&1 && echo urandom-ok']);
  // deny all with "rwa" (= rw; the kernel would refuse the letter a), then runc's defaults allow urandom
  c.linux.resources = { devices: [{ allow: false, access: 'rwa' }] };
  const r = sb.run(c);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /urandom-ok/);
  t.match(r.stderr, /warning: config\.json: linux\.resources\.devices\[0\]\.access "rwa": "a" ignored/);
  const e = defaultConfig(['true']);
  e.linux.resources = { devices: [{ allow: false, access: '' }] };
  const r2 = sb.run(e);
  t.not(r2.status, 0);
  t.equal(r2.stderr, 'tsrun: config.json: linux.resources.devices[0].access: cannot be empty\n');
  t.equal(sb.state(r2.id), null);
});

t.test('hugetlb on this host\'s unified hierarchy; checkBeforeUpdate refuses a limit below the usage', async (t) => {
  const { id, r, path } = created((c) => {
    c.linux.resources = { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }], memory: { limit: 64 << 20 } };
  }, 'huge');
  t.equal(r.status, 0, r.stderr);
  const uni = require('node:fs').existsSync('/sys/fs/cgroup/hugetlb') ? cg('hugetlb', path, 'hugetlb.2MB.limit_in_bytes') : cg('unified', path, 'hugetlb.2MB.max');
  t.equal(uni, String(4 << 20));
  t.equal(sb.rt(['start', id]).status, 0);
  const low = sb.rt(['update', '--resources', '-', id], { input: JSON.stringify({ memory: { limit: 4096, checkBeforeUpdate: true } }) });
  t.not(low.status, 0);
  t.match(low.stderr, /memory\.limit: 4096 is below the current usage \d+ \(checkBeforeUpdate\)/);
  t.equal(cg('memory', path, 'memory.limit_in_bytes'), String(64 << 20), 'the limit did not change');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('a CPU hog under a 10% quota gets about 10% of a CPU', async (t) => {
  const { id, r, path } = created((c) => {
    c.process.args = ['sh', '-c', 'while :; do :; done'];
    c.linux.resources = { cpu: { quota: 10000, period: 100000 } };
  }, 'hog');
  t.equal(r.status, 0, r.stderr);
  t.equal(sb.rt(['start', id]).status, 0);
  const u0 = Number(cg('cpuacct', path, 'cpuacct.usage'));
  const t0 = Date.now();
  await new Promise((res) => setTimeout(res, 2000));
  const used = (Number(cg('cpuacct', path, 'cpuacct.usage')) - u0) / 1e9;
  const wall = (Date.now() - t0) / 1000;
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  t.ok(used / wall <= 0.15, `${(100 * used / wall).toFixed(1)}% of a CPU: capped at the quota`);
  t.ok(used / wall >= 0.03, 'and it did run');
});

t.test('an empty parent cgroup made by someone else (the kubelet\'s pod cgroup): cpuset is filled in on every level', async (t) => {
  const pod = join('/sys/fs/cgroup/cpuset', sb.cgroupParent, 'pod');
  mkdirSync(pod, { recursive: true }); // empty cpuset.cpus and cpuset.mems, as a fresh v1 cpuset cgroup is
  t.equal(readFileSync(join(pod, 'cpuset.cpus'), 'utf8').trim(), '', 'the parent starts empty');
  const { id, r } = created((c) => {
    c.linux.cgroupsPath = `${sb.cgroupParent}/pod/ctr`;
  }, 'pod');
  t.equal(r.status, 0, r.stderr);
  t.equal(readFileSync(join(pod, 'cpuset.cpus'), 'utf8'), readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus', 'utf8'));
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  t.ok(readFileSync(join(pod, 'cpuset.mems'), 'utf8').trim() !== '', 'mems too; the parent stays (not ours)');
  rmdirSync(pod);
  t.same(sb.leaks(), []);
});

t.test('a frozen cgroup (or a frozen parent) is refused at once, not waited on forever', async (t) => {
  const dir = join('/sys/fs/cgroup/freezer', sb.cgroupParent, 'frozen');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'freezer.state'), 'FROZEN');
  for (const sub of ['frozen', 'frozen/ctr']) {
    const t0 = Date.now();
    const { id, r } = created((c) => {
      c.linux.cgroupsPath = `${sb.cgroupParent}/${sub}`;
    }, 'frz');
    t.not(r.status, 0, sub);
    t.match(r.stderr, /^tsrun: container's cgroup unexpectedly frozen \(.*freezer\.state\)\n$/, sub);
    t.ok(Date.now() - t0 < 5000, `${sub}: failed fast`);
    t.equal(sb.state(id), null);
  }
  writeFileSync(join(dir, 'freezer.state'), 'THAWED');
  rmdirSync(dir);
  t.same(sb.leaks(), [], 'nothing left behind');
});

t.test('a cgroupsPath that already holds processes gets runc\'s warning', async (t) => {
  const dir = join('/sys/fs/cgroup/pids', sb.cgroupParent, 'busy');
  mkdirSync(dir, { recursive: true });
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => {
    sleeper.kill('SIGKILL');
  });
  writeFileSync(join(dir, 'cgroup.procs'), String(sleeper.pid));
  const { id, r } = created((c) => {
    c.linux.cgroupsPath = `${sb.cgroupParent}/busy`;
  }, 'busy');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /^tsrun: warning: container's cgroup is not empty: 1 process\(es\) found$/m);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  const quiet = created(() => {}, 'empty');
  t.notMatch(quiet.r.stderr, /not empty/, 'a fresh cgroup: no warning');
  t.equal(sb.rt(['delete', '--force', quiet.id]).status, 0);
  sleeper.kill('SIGKILL');
  if (sleeper.exitCode === null && sleeper.signalCode === null) await new Promise((res) => sleeper.once('exit', res));
  rmdirSync(dir); // made by this test, not by tsrun
  t.same(sb.leaks(), []);
});

t.test('bad limits: one clear error, nothing left behind', async (t) => {
  const cases: [string, (c: Config) => void, RegExp][] = [
    ['negative memory limit', (c) => { c.linux.resources = { memory: { limit: -5 } }; }, /linux\.resources\.memory\.limit: -5 is not a limit/],
    ['swappiness above 100', (c) => { c.linux.resources = { memory: { swappiness: 200 } }; }, /swappiness: 200 is above 100/],
    // this host is hybrid: memory is on v1 (runc: "invalid configuration: cannot use unified on cgroup v1")
    ['unified key of a v1 controller', (c) => { c.linux.resources = { unified: { 'memory.max': '1000000' } }; }, /linux\.resources\.unified\.memory\.max: invalid configuration: cannot use unified on cgroup v1/],
    ['unified key of a controller on neither hierarchy', (c) => { c.linux.resources = { unified: { 'misc.max': 'x 1' } }; }, /linux\.resources\.unified\.misc\.max: no such cgroup v2 file/],
    ['cpuset outside the host cpus', (c) => { c.linux.resources = { cpu: { cpus: '999' } }; }, /linux\.resources\.cpu\.cpus: write 999 .*: E(INVAL|RANGE)/],
    ['unknown hugepage size', (c) => { c.linux.resources = { hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }; }, /page size 3MB is not supported/],
    ['a weightDevice for a device that does not exist', (c) => { c.linux.resources = { blockIO: { weightDevice: [{ major: 259, minor: 999, weight: 100 }] } }; }, /linux\.resources\.blockIO\.weightDevice\[0\]: .*E[A-Z]+/],
    ['rdma where the host has no rdma controller', (c) => { c.linux.resources = { rdma: { mlx4_0: { hcaHandles: 2 } } }; }, /linux\.resources\.rdma\.mlx4_0: .*rdma/],
  ];
  for (const [name, mod, re] of cases) {
    const { r } = created(mod, 'badres');
    t.not(r.status, 0, name);
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `${name}: one line: ${r.stderr}`);
    t.match(lines[0] ?? '', re, name);
    t.same(sb.leaks(), [], `${name}: nothing left behind`);
  }
});

t.test('update: runc flags and --resources - (containerd)', async (t) => {
  const { id, r, path } = created((c) => {
    c.linux.resources = { memory: { limit: 64 << 20 }, pids: { limit: 50 } };
  }, 'upd');
  t.equal(r.status, 0, r.stderr);
  t.equal(sb.rt(['start', id]).status, 0);
  const u = sb.rt(['update', '--memory', '128m', '--pids-limit', '60', '--cpu-share', '256', id]);
  t.equal(u.status, 0, u.stderr);
  t.equal(cg('memory', path, 'memory.limit_in_bytes'), String(128 << 20));
  t.equal(cg('pids', path, 'pids.max'), '60');
  t.equal(cg('cpu', path, 'cpu.shares'), '256');
  const u2 = sb.rt(['update', '--resources=-', id], { input: JSON.stringify({ memory: { limit: 96 << 20 }, cpu: { quota: 50000, period: 100000 } }) });
  t.equal(u2.status, 0, u2.stderr);
  t.equal(cg('memory', path, 'memory.limit_in_bytes'), String(96 << 20));
  t.equal(cg('cpu', path, 'cpu.cfs_quota_us'), '50000');
  const u3 = sb.rt(['update', '--cpu-burst', '20000', '--cpu-idle', '1', id]);
  t.equal(u3.status, 0, u3.stderr);
  t.equal(cg('cpu', path, 'cpu.cfs_burst_us'), '20000');
  t.equal(cg('cpu', path, 'cpu.idle'), '1');
  // what later updates start from: the state holds the merged resources
  const saved = JSON.parse(readFileSync(join(sb.root, id, 'state.json'), 'utf8')).resources;
  t.same(saved.memory, { limit: 96 << 20 }, 'memory as last updated');
  t.same(saved.cpu, { shares: 256, quota: 50000, period: 100000, burst: 20000, idle: 1 }, 'cpu merged across three updates');
  t.same(saved.pids, { limit: 60 });
  const bad = sb.rt(['update', '--memory', 'lots', id]);
  t.not(bad.status, 0);
  t.match(bad.stderr, /^tsrun: invalid value for --memory: "lots"\n$/);
  const badJson = sb.rt(['update', '--resources', '-', id], { input: '{' });
  t.match(badJson.stderr, /--resources: invalid JSON/);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  const gone = sb.rt(['update', '--memory', '1m', id]);
  t.match(gone.stderr, /container does not exist/);
});

t.test('update memory and swap in either direction, and --memory -1 after a swap limit (runc\'s write order)', async (t) => {
  const { id, r, path } = created((c) => {
    c.linux.resources = { memory: { limit: 64 << 20, swap: 128 << 20 } };
  }, 'swap');
  t.equal(r.status, 0, r.stderr);
  const memsw = () => cg('memory', path, 'memory.memsw.limit_in_bytes');
  t.equal(memsw(), String(128 << 20));
  const up = sb.rt(['update', '--memory', '256m', '--memory-swap', '512m', id]);
  t.equal(up.status, 0, `raise both: ${up.stderr}`);
  t.equal(cg('memory', path, 'memory.limit_in_bytes'), String(256 << 20));
  t.equal(memsw(), String(512 << 20));
  const down = sb.rt(['update', '--memory', '32m', '--memory-swap', '48m', id]);
  t.equal(down.status, 0, `lower both: ${down.stderr}`);
  t.equal(memsw(), String(48 << 20));
  const unl = sb.rt(['update', '--memory', '-1', id]);
  t.equal(unl.status, 0, `--memory -1 lifts the swap limit too: ${unl.stderr}`);
  t.ok(Number(cg('memory', path, 'memory.limit_in_bytes')) > 2 ** 60);
  t.ok(Number(memsw()) > 2 ** 60);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('events --stats and the OOM event', async (t) => {
  const { id, r } = created((c) => {
    c.process.args = ['sh', '-c', 'sleep 2; x=$(head -c 67108864 /dev/zero | tr "\\0" a); sleep 1000'];
    c.linux.resources = { memory: { limit: 16 << 20 }, pids: { limit: 20 } };
  }, 'ev');
  t.equal(r.status, 0, r.stderr);
  t.equal(sb.rt(['start', id]).status, 0);
  const s = sb.rt(['events', '--stats', id]);
  t.equal(s.status, 0, s.stderr);
  const ev = JSON.parse(s.stdout);
  t.equal(ev.type, 'stats');
  t.equal(ev.id, id);
  t.equal(ev.data.memory.usage.limit, 16 << 20);
  t.equal(ev.data.pids.limit, 20);
  t.ok(ev.data.pids.current >= 1);
  t.ok(ev.data.cpu.usage.total > 0);
  // runc's whole shape (types/events.go): every section there, in its names
  for (const k of ['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces']) t.ok(k in ev.data, `stats.${k}`);
  t.same(Object.keys(ev.data.cpu.throttling), ['periods', 'throttledPeriods', 'throttledTime'], 'runc\'s throttling names');
  t.ok(ev.data.cpu.usage.percpu_user.length >= 1, 'per-cpu user time (v1 cpuacct)');
  t.ok('kernel' in ev.data.memory && 'kernelTCP' in ev.data.memory, 'kernel memory entries on v1');
  t.ok(ev.data.cpuset.cpus.length >= 1, 'cpuset as lists');
  t.ok(Object.keys(ev.data.hugetlb).length >= 1, 'hugetlb per page size');
  t.same(ev.data.network_interfaces, [], 'only lo in a new network namespace');
  // the stream reports the OOM kill (here of the init shell itself, which holds the string)
  const stream = sb.rt(['events', '--interval', '100ms', id], { timeout: 8000 });
  const types = stream.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).type);
  t.ok(types.includes('oom'), `an oom event: ${types.join(',')}`);
  t.ok(types.includes('stats'));
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});
