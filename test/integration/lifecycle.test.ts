// Lifecycle of real containers: create -> created -> start -> running ->
// kill -> stopped -> delete, run's exit codes and signals, list, pid files.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, sleepMs } from '../lib/harness';

const sb = new Sandbox('life');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

function waitStatus(id: string, want: string, ms = 5000): string | undefined {
  const end = Date.now() + ms;
  let s: string | undefined;
  while (Date.now() < end) {
    s = sb.state(id)?.status;
    if (s === want) return s;
    sleepMs(10);
  }
  return s;
}

t.test('create, start, state, kill, delete', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  const pidFile = join(sb.dir, `${id}.pid`);
  const c = sb.rt(['create', '--bundle', b, '--pid-file', pidFile, id]);
  t.equal(c.status, 0, `create: ${c.stderr}`);
  const st = sb.state(id)!;
  t.equal(st.status, 'created');
  t.ok(st.pid > 0, 'pid set');
  t.equal(readFileSync(pidFile, 'utf8'), String(st.pid), 'pid file holds the init pid');
  t.equal(st.bundle, b);
  t.equal(st.id, id);
  t.match(st, { ociVersion: String, rootfs: String, created: String, owner: String });
  // the waiting process is our small stage, not Node
  const exe = readFileSync(`/proc/${st.pid}/cmdline`, 'utf8');
  t.match(exe, /^tsrun:stage|^runc|^crun|^\/proc/, 'waiting process');
  const again = sb.rt(['create', '--bundle', b, id]);
  t.not(again.status, 0, 'same id twice fails');
  t.match(again.stderr, /container with id exists/);

  const s = sb.rt(['start', id]);
  t.equal(s.status, 0, `start: ${s.stderr}`);
  t.equal(sb.state(id)!.status, 'running');
  const s2 = sb.rt(['start', id]);
  t.not(s2.status, 0, 'start twice fails');

  const d0 = sb.rt(['delete', id]);
  t.not(d0.status, 0, 'delete of a running container without --force fails');
  t.match(d0.stderr, /not stopped/);

  const k = sb.rt(['kill', id, 'KILL']);
  t.equal(k.status, 0, `kill: ${k.stderr}`);
  t.equal(waitStatus(id, 'stopped'), 'stopped');
  t.equal(sb.state(id)!.pid, 0, 'a stopped container has pid 0');
  const k2 = sb.rt(['kill', id, '9']);
  t.not(k2.status, 0);
  t.match(k2.stderr, /container not running/);
  const d = sb.rt(['delete', id]);
  t.equal(d.status, 0, `delete: ${d.stderr}`);
  const gone = sb.rt(['state', id]);
  t.not(gone.status, 0);
  t.match(gone.stderr, /container does not exist/);
  t.notOk(existsSync(join(sb.root, id)), 'state dir removed');
});

t.test('delete of a created container kills the waiting init', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const pid = sb.state(id)!.pid;
  const d = sb.rt(['delete', id]);
  t.equal(d.status, 0, d.stderr);
  sleepMs(50);
  const alive = existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  t.notOk(alive, 'init gone');
});

t.test('delete --force of a running container; delete --force of a missing one', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  t.equal(sb.rt(['start', id]).status, 0);
  const d = sb.rt(['delete', '--force', id]);
  t.equal(d.status, 0, d.stderr);
  t.equal(sb.rt(['state', id]).status, 1);
  t.equal(sb.rt(['delete', '--force', 'no-such-container']).status, 0, 'force on a missing container is not an error');
  t.equal(sb.rt(['delete', 'no-such-container']).status, 1);
});

t.test('run returns the exit status; 128+N for a signal', async (t) => {
  const r = sb.run(defaultConfig(['sh', '-c', 'exit 42']));
  t.equal(r.status, 42, r.stderr);
  // pid 1 of a pid namespace ignores signals it has no handler for: take the
  // host pid namespace so that the shell can kill itself
  const c2 = defaultConfig(['sh', '-c', 'kill -USR1 $$']);
  c2.linux.namespaces = c2.linux.namespaces.filter((n) => n.type !== 'pid');
  const r2 = sb.run(c2);
  t.equal(r2.status, 128 + 10, r2.stderr);
  const r3 = sb.run(defaultConfig(['echo', 'hello']));
  t.equal(r3.stdout, 'hello\n');
  t.equal(r3.status, 0);
  t.notOk(existsSync(join(sb.root, r3.id)), 'run without --keep deletes the container');
});

t.test('run --keep leaves a stopped container; run -d detaches', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['true']));
  const r = sb.rt(['run', '--keep', '--bundle', b, id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(sb.state(id)?.status, 'stopped');
  t.equal(sb.rt(['delete', id]).status, 0);

  const id2 = sb.id();
  const b2 = sb.bundle(defaultConfig(['sleep', '1000']));
  const r2 = sb.rt(['run', '-d', '--bundle', b2, id2]);
  t.equal(r2.status, 0, r2.stderr);
  t.equal(sb.state(id2)?.status, 'running');
  t.equal(sb.rt(['kill', id2, 'SIGKILL']).status, 0);
  t.equal(waitStatus(id2, 'stopped'), 'stopped');
  t.equal(sb.rt(['delete', id2]).status, 0);
});

t.test('run in the foreground forwards signals', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.05; done']));
  const child = spawn(sb.bin, ['--root', sb.root, 'run', '--bundle', b, id], { stdio: 'ignore' });
  const end = Date.now() + 5000;
  while (sb.state(id)?.status !== 'running' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 7, 'the container saw SIGTERM and its exit status came back');
});

t.test('kill: signal names and numbers, unknown signal, --all', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'trap "exit 3" USR2; while true; do sleep 0.05; done']));
  t.equal(sb.rt(['run', '-d', '--bundle', b, id]).status, 0);
  const bad = sb.rt(['kill', id, 'NOPE']);
  t.not(bad.status, 0);
  t.match(bad.stderr, /unknown signal/);
  t.equal(sb.rt(['kill', id, 'usr2']).status, 0);
  t.equal(waitStatus(id, 'stopped'), 'stopped');
  t.equal(sb.rt(['delete', id]).status, 0);

  const id2 = sb.id();
  const b2 = sb.bundle(defaultConfig(['sh', '-c', 'sleep 1000 & sleep 1000']));
  t.equal(sb.rt(['run', '-d', '--bundle', b2, id2]).status, 0);
  sleepMs(100);
  t.equal(sb.rt(['kill', '--all', id2, 'KILL']).status, 0);
  t.equal(waitStatus(id2, 'stopped'), 'stopped');
  t.equal(sb.rt(['delete', id2]).status, 0);
});

t.test('kill --all with a signal other than KILL: the freeze, signal every pid, thaw walk reaches every process', async (t) => {
  const dir = join(sb.dir, `killall-${process.pid}`);
  require('node:fs').mkdirSync(dir, { recursive: true });
  const child = (n: string) => `(trap "echo ${n} >> /k/log; exit 0" TERM; while :; do sleep 0.05; done) &`;
  const c = defaultConfig(['sh', '-c', `trap "" TERM; ${child('c1')} ${child('c2')} ${child('c3')} wait; while :; do sleep 0.05; done`]);
  c.mounts.push({ destination: '/k', type: 'bind', source: dir, options: ['rbind', 'rw'] });
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(c), id]).status, 0);
  sleepMs(300);
  t.equal(sb.rt(['kill', '--all', id, 'TERM']).status, 0);
  let log = '';
  for (let i = 0; i < 100 && log.split('\n').filter(Boolean).length < 3; i++) {
    sleepMs(50);
    try {
      log = require('node:fs').readFileSync(join(dir, 'log'), 'utf8');
    } catch {
      /* not yet */
    }
  }
  t.same(log.split('\n').filter(Boolean).sort(), ['c1', 'c2', 'c3'], 'every process got TERM');
  t.equal(sb.state(id)?.status, 'running', 'the init ignores TERM: still running, and not left frozen');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('list: table, -q, json', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const tab = sb.rt(['list']);
  t.match(tab.stdout, /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER/);
  t.match(tab.stdout, new RegExp(`${id}\\s+\\d+\\s+created`));
  t.match(sb.rt(['list', '-q']).stdout, new RegExp(`^${id}$`, 'm'));
  const js = JSON.parse(sb.rt(['list', '--format', 'json']).stdout);
  t.ok(js.find((c: { id: string; status: string }) => c.id === id && c.status === 'created'));
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('concurrent verbs on one container are safe', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  t.equal(sb.rt(['run', '-d', '--bundle', b, id]).status, 0);
  const ps = [0, 1, 2, 3].map(() =>
    new Promise<number | null>((r) => spawn(sb.bin, ['--root', sb.root, 'delete', '--force', id], { stdio: 'ignore' }).on('exit', r)));
  const codes = await Promise.all(ps);
  t.ok(codes.every((c) => c === 0), `all deletes succeed or find it gone: ${codes}`);
  t.notOk(existsSync(join(sb.root, id)));
});

t.test('pause, resume, ps', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'while true; do date +%s%N > /dev/shm/tick; sleep 0.02; done']));
  t.equal(sb.rt(['run', '-d', '--bundle', b, id]).status, 0);
  const pid = sb.state(id)!.pid;
  const pids = JSON.parse(sb.rt(['ps', '--format', 'json', id]).stdout) as number[];
  t.ok(pids.includes(pid), `ps json lists the init ${pid}: ${pids}`);
  const table = sb.rt(['ps', id]).stdout.split('\n').filter(Boolean);
  t.match(table[0], /PID/);
  t.ok(table.slice(1).some((l) => l.split(/\s+/)[1] === String(pid)), 'ps table has the init row');
  const p = sb.rt(['pause', id]);
  t.equal(p.status, 0, p.stderr);
  t.equal(sb.state(id)!.status, 'paused');
  const utime = () => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[11]);
  const u0 = utime();
  sleepMs(200);
  t.equal(utime(), u0, 'a frozen process gets no cpu');
  t.not(sb.rt(['pause', id]).status, 0, 'pausing a paused container fails');
  const r = sb.rt(['resume', id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(sb.state(id)!.status, 'running');
  t.not(sb.rt(['resume', id]).status, 0, 'resuming a running container fails');
  t.equal(sb.rt(['pause', id]).status, 0);
  t.equal(sb.rt(['delete', '--force', id]).status, 0, 'delete --force of a paused container');
  t.equal(sb.state(id), null);
});
