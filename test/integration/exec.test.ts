// exec into running containers: namespaces, cgroup, flags, process.json,
// exit codes, detach, concurrent execs, and refusals.
import t from 'tap';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig } from '../lib/harness';

const sb = new Sandbox('exec');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const id = sb.id('box');
const c = defaultConfig(['sleep', '1000']);
c.linux.namespaces.push({ type: 'cgroup' });
c.process.env.push('FROM_CONFIG=yes');
c.linux.cgroupsPath = `${sb.cgroupParent}/box`;
const bundle = sb.bundle(c);
t.before(() => {
  const r = sb.rt(['run', '-d', '--bundle', bundle, id]);
  if (r.status !== 0) throw new Error(r.stderr);
});

t.test('exec joins exactly the container\'s namespaces and cgroup', async (t) => {
  const init = sb.state(id)!.pid;
  const r = sb.rt(['exec', id, 'sh', '-c', 'for n in pid net ipc uts mnt cgroup user; do readlink /proc/self/ns/$n; done; echo $$']);
  t.equal(r.status, 0, r.stderr);
  const l = r.stdout.trim().split('\n');
  ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup', 'user'].forEach((n, i) => {
    t.equal(l[i], readlinkSync(`/proc/${init}/ns/${n}`), `${n} is the container's`);
  });
  t.not(l[7], '1', 'not the init');
  // the host view of an exec'd process's cgroups is the init's
  const pf = join(sb.dir, 'ns.pid');
  t.equal(sb.rt(['exec', '-d', '--pid-file', pf, id, 'sleep', '30']).status, 0);
  const pid = Number(readFileSync(pf, 'utf8'));
  t.equal(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), readFileSync(`/proc/${init}/cgroup`, 'utf8'));
  t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`:pids:${sb.cgroupParent}/box\n`));
  process.kill(pid, 'SIGKILL');
});

t.test('the container\'s process settings are the default; flags override', async (t) => {
  const r = sb.rt(['exec', '--env', 'EXTRA=1', '--cwd', '/etc', '--user', '1000:1000', '--additional-gids', '5', id, 'sh', '-c', 'echo $FROM_CONFIG $EXTRA; pwd; id -u; id -g; id -G']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'yes 1\n/etc\n1000\n1000\n1000 5\n');
  const caps = sb.rt(['exec', '--cap', 'CAP_NET_RAW', id, 'grep', 'CapBnd', '/proc/self/status']);
  t.match(caps.stdout, /CapBnd:\s+0000000020002420/, 'net_raw added to the default caps');
  const nnp = sb.rt(['exec', id, 'grep', 'NoNewPrivs', '/proc/self/status']);
  t.match(nnp.stdout, /NoNewPrivs:\s+1/);
});

t.test('exit status and signals', async (t) => {
  t.equal(sb.rt(['exec', id, 'sh', '-c', 'exit 9']).status, 9);
  t.equal(sb.rt(['exec', id, 'sh', '-c', 'kill -TERM $$']).status, 128 + 15);
});

t.test('--process process.json', async (t) => {
  const pj = join(sb.dir, 'process.json');
  writeFileSync(pj, JSON.stringify({ args: ['sh', '-c', 'echo $A; pwd; id -u'], env: ['A=from-json', 'PATH=/bin'], cwd: '/proc', user: { uid: 65534, gid: 65534 } }));
  const r = sb.rt(['exec', '--process', pj, id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'from-json\n/proc\n65534\n');
});

t.test('--detach with --pid-file; ps sees the process', async (t) => {
  const pf = join(sb.dir, 'exec.pid');
  const r = sb.rt(['exec', '-d', '--pid-file', pf, id, 'sleep', '100']);
  t.equal(r.status, 0, r.stderr);
  const pid = Number(readFileSync(pf, 'utf8'));
  t.ok(pid > 0);
  const ps = JSON.parse(sb.rt(['ps', '--format', 'json', id]).stdout) as number[];
  t.ok(ps.includes(pid), 'in the container cgroup');
  process.kill(pid, 'SIGKILL');
});

t.test('concurrent execs', async (t) => {
  const { spawn } = await import('node:child_process');
  const runs = [...Array(6).keys()].map((i) => new Promise<[number | null, string]>((res) => {
    const ch = spawn(sb.bin, ['--root', sb.root, 'exec', id, 'sh', '-c', `echo ${i}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ch.stdout.on('data', (d) => (out += d));
    // 'close', not 'exit': the output may still be in the pipe at exit
    ch.on('close', (code) => res([code, out.trim()]));
  }));
  const got = await Promise.all(runs);
  t.same(got.map((g) => g[0]), [0, 0, 0, 0, 0, 0]);
  t.same(got.map((g) => g[1]), ['0', '1', '2', '3', '4', '5']);
});

t.test('many short execs: tsrun itself always exits cleanly (no crash at exit after the wait thread)', async (t) => {
  // on Node, koffi unloading libtsrun at exit under a returning wait thread was a SIGSEGV (~3% of execs)
  const { spawn } = await import('node:child_process');
  const bad: string[] = [];
  for (let round = 0; round < 5; round++) {
    const runs = [...Array(6).keys()].map(() => new Promise<void>((res) => {
      const ch = spawn(sb.bin, ['--root', sb.root, 'exec', id, 'true'], { stdio: 'ignore' });
      ch.on('close', (code, sig) => {
        if (code !== 0) bad.push(`${code} ${sig}`);
        res();
      });
    }));
    await Promise.all(runs);
  }
  t.same(bad, [], '30 execs, all exit 0');
});

t.test('refusals: one clear line, nothing left', async (t) => {
  const bad = join(sb.dir, 'bad.json');
  writeFileSync(bad, '{"args": [], "cwd": "/"}');
  const rel = join(sb.dir, 'rel.json');
  writeFileSync(rel, '{"args": ["true"], "cwd": "tmp"}');
  const cases: [string[], RegExp][] = [
    [['exec', 'no-such-container', 'true'], /container does not exist/],
    [['exec', id, 'no-such-binary'], /exec: "no-such-binary": executable file not found in \$PATH/],
    [['exec', '--process', bad, id], /args: must not be empty/],
    [['exec', '--process', rel, id], /cwd: must be an absolute path/],
    [['exec', '--process', join(sb.dir, 'missing.json'), id], /--process .*missing\.json: ENOENT/],
    [['exec', '--cwd', 'tmp', id, 'true'], /--cwd: must be an absolute path/],
    [['exec', '--user', 'bob', id, 'true'], /--user: expected <uid>\[:<gid>\]/],
    [['exec', '-t', '-d', id, 'sh'], /cannot allocate tty if tsrun will detach without setting console socket/],
    [['exec', '--console-socket', join(sb.dir, 'c.sock'), id, 'sh'], /cannot use console socket if tsrun will not detach or allocate tty/],
    ...(require('node:fs').existsSync('/sys/kernel/security/apparmor') ? [] : [[['exec', '--apparmor', 'some-profile', id, 'true'], /AppArmor is not enabled on this host/] as [string[], RegExp]]),
    ...(require('node:fs').existsSync('/sys/fs/selinux/enforce') ? [] : [[['exec', '--process-label', 'system_u:system_r:container_t:s0', id, 'true'], /SELinux is not enabled on this host/] as [string[], RegExp]]),
  ];
  for (const [args, re] of cases) {
    const r = sb.rt(args);
    t.not(r.status, 0, args.join(' '));
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `one line: ${r.stderr}`);
    t.match(lines[0] ?? '', re);
  }
  t.same(sb.rt(['ps', '--format', 'json', id]).stdout.trim(), `[${sb.state(id)!.pid}]`, 'no stray process in the container');
});

t.test('--cgroup: into an existing sub-cgroup, for all controllers or named ones', async (t) => {
  const { mkdirSync, rmdirSync, existsSync } = require('node:fs') as typeof import('node:fs');
  const st = JSON.parse(readFileSync(join(sb.root, id, 'state.json'), 'utf8')) as { cgroupPaths: string[] };
  const made: string[] = [];
  for (const p of st.cgroupPaths) {
    for (const s of ['sub', 'only-pids']) {
      const d = join(p, s);
      if (s === 'only-pids' && !p.includes('/pids/')) continue;
      mkdirSync(d);
      made.push(d);
      if (existsSync(join(p, 'cpuset.cpus'))) {
        writeFileSync(join(d, 'cpuset.cpus'), readFileSync(join(p, 'cpuset.cpus')));
        writeFileSync(join(d, 'cpuset.mems'), readFileSync(join(p, 'cpuset.mems')));
      }
    }
  }
  t.teardown(() => { for (const d of made.reverse()) try { rmdirSync(d); } catch { /* busy: the test failed */ } });
  const all = sb.rt(['exec', '--cgroup', 'sub', id, 'cat', '/proc/self/cgroup']);
  t.equal(all.status, 0, all.stderr);
  // inside a cgroup namespace rooted at the container's cgroup: /sub everywhere
  for (const l of all.stdout.trim().split('\n')) t.match(l, /:\/sub$/, l);
  const one = sb.rt(['exec', '--cgroup', 'pids:only-pids', id, 'cat', '/proc/self/cgroup']);
  t.equal(one.status, 0, one.stderr);
  for (const l of one.stdout.trim().split('\n')) t.match(l, /:pids:/.test(l) ? /:\/only-pids$/ : /:\/$/, l);
  const bad = sb.rt(['exec', '--cgroup', 'missing', id, 'true']);
  t.match(bad.stderr, /^tsrun: exec: --cgroup: \S+\/missing does not exist \(the sub-cgroup must exist\)\n$/);
  const esc = sb.rt(['exec', '--cgroup', '../escape', id, 'true']);
  t.match(esc.stderr, /: \.\.\/escape is not a sub cgroup path\n$/, 'runc\'s words');
  t.equal(esc.status, 255, 'exec failing before its process runs exits 255, as runc');
  const dotdot = sb.rt(['exec', '--cgroup', '..', id, 'true']);
  t.match(dotdot.stderr, /: \.\. is not a sub cgroup path\n$/);
  const nctl = sb.rt(['exec', '--cgroup', 'nosuchctl:sub', id, 'true']);
  t.match(nctl.stderr, /the container has no cgroup for controller nosuchctl/);
});


t.test('exec into a paused and a stopped container', async (t) => {
  t.equal(sb.rt(['pause', id]).status, 0);
  const p = sb.rt(['exec', id, 'true']);
  t.match(p.stderr, /cannot exec in a paused container/);
  t.equal(p.status, 255, 'runc\'s exit status');
  t.equal(sb.rt(['resume', id]).status, 0);
  const pf = sb.rt(['exec', '--pid-file', join(sb.dir, 'no', 'such', 'dir', 'pid'), id, 'true']);
  t.equal(pf.status, 255, `a --pid-file that cannot be written: 255 (${pf.stderr.trim()})`);
  t.equal(sb.rt(['kill', id, '0']).status, 0, 'kill ID 0: the init exists');
  t.equal(sb.rt(['kill', '--all', id, '0']).status, 0, 'kill -a ID 0');
  t.equal(sb.rt(['kill', id, 'KILL']).status, 0);
  for (let i = 0; i < 200 && sb.state(id)?.status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 10));
  const s = sb.rt(['exec', id, 'true']);
  t.equal(s.status, 255);
  t.match(s.stderr, /cannot exec in a stopped container/);
  t.not(sb.rt(['kill', id, '0']).status, 0, 'kill ID 0 of a stopped container fails');
  t.equal(sb.rt(['delete', id]).status, 0);
});
