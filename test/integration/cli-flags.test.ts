// runc 1.2+ command-line flags that clients send: --pidfd-socket on create,
// run and exec (containerd signals and waits through the pidfd).
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, Sandbox, defaultConfig } from '../lib/harness';

const sb = new Sandbox('flags');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const RECV = join(sb.dir, 'pidfd-recv');
t.before(() => {
  const r = spawnSync('cc', ['-O2', '-o', RECV, join(REPO, 'test', 'helpers', 'pidfd-recv.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build pidfd-recv: ${r.stderr}`);
});

let n = 0;
/** A receiver on a fresh socket; resolves with what it printed once it exits. */
async function receiver(kill = false): Promise<{ sock: string; done: Promise<string>; p: ChildProcess }> {
  const sock = join(sb.dir, `pidfd-${++n}.sock`);
  const p = spawn(RECV, kill ? [sock, 'kill'] : [sock], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((res) => p.stdout!.on('data', (d) => { out += d; if (out.includes('ready')) res(); }));
  const done = new Promise<string>((res) => p.on('exit', () => res(out)));
  await ready;
  return { sock, done, p };
}

t.test('create --pidfd-socket: the socket gets a pidfd of the init, which can kill it', async (t) => {
  const rcv = await receiver(true);
  const id = sb.id();
  const pidFile = join(sb.dir, 'init.pid');
  const r = sb.rt(['create', '--pidfd-socket', rcv.sock, '--pid-file', pidFile, '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]);
  t.equal(r.status, 0, r.stderr);
  const pid = readFileSync(pidFile, 'utf8').trim();
  t.equal(sb.state(id)?.status, 'created');
  rcv.p.stdin!.end('kill\n');
  const out = await rcv.done;
  t.match(out, new RegExp(`pid=${pid}\\n`), 'the pidfd is the init\'s');
  for (let i = 0; i < 100 && sb.state(id)?.status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(sb.state(id)?.status, 'stopped', 'killed through the pidfd');
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('run -d and exec -d --pidfd-socket: the pidfd is of the process started', async (t) => {
  let rcv = await receiver();
  const id = sb.id();
  let r = sb.rt(['run', '-d', '--pidfd-socket', rcv.sock, '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]);
  t.equal(r.status, 0, r.stderr);
  t.match(await rcv.done, new RegExp(`pid=${sb.state(id)!.pid}\\n`));
  rcv = await receiver();
  const pidFile = join(sb.dir, 'exec.pid');
  r = sb.rt(['exec', '-d', '--pidfd-socket', rcv.sock, '--pid-file', pidFile, id, 'sleep', '100']);
  t.equal(r.status, 0, r.stderr);
  t.match(await rcv.done, new RegExp(`pid=${readFileSync(pidFile, 'utf8').trim()}\\n`), 'the exec\'d process, not the init');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('--pidfd-socket nobody listens on: one clear error, nothing left', async (t) => {
  const id = sb.id();
  const r = sb.rt(['create', '--pidfd-socket', join(sb.dir, 'nobody.sock'), '--bundle', sb.bundle(defaultConfig(['true'])), id]);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: --pidfd-socket .*nobody\.sock: send the pidfd of \d+: ENOENT\n$/);
  t.same(sb.leaks(), []);
});
