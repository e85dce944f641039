// Terminals with a real pty: the console socket flow containerd's shim and
// conmon use (create/start, run -d, exec -t -d), the foreground relay of
// run and exec under a real terminal with a resize, and the refusals.
// test/helpers/ttytool.c plays the shim (recv) and the user's terminal (pty).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, makeRootfs, REPO, type Config } from '../lib/harness';

const sb = new Sandbox('tty');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const TTYTOOL = join(sb.dir, 'ttytool');
t.before(() => {
  const r = spawnSync('cc', ['-O2', '-o', TTYTOOL, join(REPO, 'test', 'helpers', 'ttytool.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build ttytool: ${r.stderr}`);
});

function ttyConfig(args: string[] = ['sh']): Config {
  const c = defaultConfig(args);
  c.process.terminal = true;
  (c.process as Record<string, unknown>).consoleSize = { height: 30, width: 100 };
  return c;
}

interface Receiver { out: () => string; err: () => string; exited: Promise<number> }
let sockN = 0;

/** Start `ttytool recv` on a fresh socket; resolves once it listens. Types `input` into the pty. */
async function receiver(input: string, size?: string): Promise<{ sock: string; r: Receiver }> {
  const sock = join(sb.dir, `console-${++sockN}.sock`);
  const p = spawn(TTYTOOL, ['recv', sock, ...(size ? [size] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  const listening = new Promise<void>((resolve, reject) => {
    p.stderr.on('data', (d) => {
      err += d;
      if (err.includes('listening')) resolve();
    });
    p.on('exit', () => reject(new Error(`ttytool exited: ${err}`)));
  });
  const exited = new Promise<number>((resolve) => p.on('exit', (c) => resolve(c ?? -1)));
  await listening;
  // typed once the pty is there; the shell reads it when it starts
  p.stdin.write(input);
  t.teardown(() => { p.kill('SIGKILL'); });
  return { sock, r: { out: () => out, err: () => err, exited } };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))]);
}

async function waitStopped(id: string) {
  for (let i = 0; i < 200; i++) {
    if (sb.state(id)?.status === 'stopped') return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

t.test('create --console-socket, start: an interactive shell on a pty from the container\'s devpts', async (t) => {
  const { sock, r } = await receiver('tty; stty size; stat -c "%F %t" /dev/console; echo pid=$$; ls /dev/pts; exit 3\n');
  const id = sb.id();
  const cr = sb.rt(['create', '--console-socket', sock, '--bundle', sb.bundle(ttyConfig()), id]);
  t.equal(cr.status, 0, cr.stderr);
  t.equal(sb.rt(['start', id]).status, 0);
  await within(r.exited, 10000, 'the pty hangs up when the shell exits');
  t.match(r.err(), /received \/dev\/ptmx/, 'the master came over the socket with its name');
  const out = r.out().replace(/\r/g, '');
  t.match(out, /^\/dev\/pts\/0$/m, 'stdio is the pty');
  t.match(out, /^30 100$/m, 'consoleSize applied');
  t.match(out, /^character special file 88$/m, '/dev/console is the pty (major 136 = 0x88)');
  t.match(out, /^pid=1$/m);
  t.match(out, /^0\s+ptmx$/m, 'a new devpts instance: only this pty');
  t.ok(await waitStopped(id));
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('run -d --console-socket', async (t) => {
  const { sock, r } = await receiver('tty; exit 0\n');
  const id = sb.id();
  const rr = sb.rt(['run', '-d', '--console-socket', sock, '--bundle', sb.bundle(ttyConfig()), id]);
  t.equal(rr.status, 0, rr.stderr);
  await within(r.exited, 10000, 'shell exits');
  t.match(r.out(), /\/dev\/pts\/0/);
  t.ok(await waitStopped(id));
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('exec -t -d --console-socket into a running container; the receiver resizes the pty', async (t) => {
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  const { sock, r } = await receiver('tty; stty size; [ -e /dev/console ] || echo no-console; exit 0\n', '25x90');
  const ex = sb.rt(['exec', '-t', '-d', '--console-socket', sock, id, 'sh']);
  t.equal(ex.status, 0, ex.stderr);
  await within(r.exited, 10000, 'exec shell exits');
  const out = r.out().replace(/\r/g, '');
  t.match(out, /^\/dev\/pts\/\d+$/m);
  t.match(out, /^25 90$/m);
  t.match(out, /^no-console$/m, 'exec does not make /dev/console');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

/** Run tsrun under a real terminal (ttytool pty), which resizes it on RESIZE-ME. */
function underPty(args: string[], input = ''): { status: number | null; out: string } {
  const r = spawnSync(TTYTOOL, ['pty', '24x80', '40x132', sb.bin, '--root', sb.root, ...args], { input, encoding: 'utf8', timeout: 30000 });
  return { status: r.status, out: (r.stdout ?? '').replace(/\r/g, '') };
}

const RESIZE_SCRIPT = 'tty; stty size; echo RESIZE-ME; i=0; while [ "$(stty size)" = "24 80" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; stty size; exit 3';

t.test('foreground run with a terminal: relay, the caller\'s size, a resize, the exit status', async (t) => {
  const id = sb.id();
  const r = underPty(['run', '--bundle', sb.bundle(ttyConfig(['sh', '-c', RESIZE_SCRIPT])), id]);
  t.equal(r.status, 3, r.out);
  t.match(r.out, /^\/dev\/pts\/0\n24 80\nRESIZE-ME\n40 132\n/m, 'the caller\'s size, then the new one after SIGWINCH');
  t.equal(sb.state(id), null, 'run removed the container');
});

t.test('foreground run with a terminal writes nothing of its own to the container\'s input (no NUL)', async (t) => {
  const id = sb.id();
  const r = underPty(['run', '--bundle', sb.bundle(ttyConfig(['sh', '-c', 'stty -echo; read -t 1 x; printf "[%s]" "$x" | od -An -c'])), id]);
  t.match(r.out, /^\s*\[\s+\]\s*$/m, `the process read nothing: ${JSON.stringify(r.out)}`);
  t.equal(sb.state(id), null);
});

t.test('exec -t of a short-lived process, stdin not a tty, with and without consoleSize: no pidfd race', async (t) => {
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  const pj = join(sb.dir, 'short-process.json');
  writeFileSync(pj, JSON.stringify({ ...defaultConfig(['true']).process, terminal: true, consoleSize: { height: 10, width: 40 } }));
  let bad = 0;
  for (let i = 0; i < 20; i++) {
    for (const argv of [['exec', '-t', id, 'true'], ['exec', '--process', pj, id]]) {
      const r = sb.rt(argv, { input: '' });
      if (r.status !== 0) {
        bad++;
        t.fail(`${argv.join(' ')}: ${r.status} ${r.stderr}`);
      }
    }
  }
  t.equal(bad, 0, '40 short execs with a terminal, all exit 0');
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('foreground exec -t: relay, resize, exit status; input reaches the process', async (t) => {
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  const r = underPty(['exec', '-t', id, 'sh', '-c', RESIZE_SCRIPT]);
  t.equal(r.status, 3, r.out);
  t.match(r.out, /^\/dev\/pts\/\d+\n24 80\nRESIZE-ME\n40 132\n/m);
  // a process that asks at once gets the caller's size, not 0x0 (it once raced the relay)
  for (let i = 0; i < 5; i++) t.match(underPty(['exec', '-t', id, 'stty', 'size']).out, /^24 80$/m, `size at start, try ${i}`);
  const typed = underPty(['exec', '-t', id, 'sh', '-c', 'read line; echo "got:$line"'], 'hello\n');
  t.match(typed.out, /got:hello/);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
});

t.test('refusals: one clear line, nothing left behind', async (t) => {
  const cases: [string[], Config, RegExp][] = [
    [['create'], ttyConfig(), /^tsrun: cannot allocate tty if tsrun will detach without setting console socket\n$/],
    [['run', '-d'], ttyConfig(), /^tsrun: cannot allocate tty if tsrun will detach without setting console socket\n$/],
    [['create', '--console-socket', join(sb.dir, 'x.sock')], defaultConfig(['sh']), /^tsrun: cannot use console socket if tsrun will not detach or allocate tty\n$/],
    [['create', '--console-socket', join(sb.dir, 'no-such.sock')], ttyConfig(), /^tsrun: --console-socket: connect \S+no-such\.sock: ENOENT\n$/],
  ];
  for (const [verb, cfg, err] of cases) {
    const id = sb.id();
    const r = sb.rt([...verb, '--bundle', sb.bundle(cfg), id]);
    t.not(r.status, 0, verb.join(' '));
    t.match(r.stderr, err);
    t.equal(sb.state(id), null);
  }
  const id = sb.id();
  t.equal(sb.rt(['run', '-d', '--bundle', sb.bundle(defaultConfig(['sleep', '1000'])), id]).status, 0);
  const ex = sb.rt(['exec', '-t', '-d', id, 'sh']);
  t.match(ex.stderr, /^tsrun: cannot allocate tty if tsrun will detach without setting console socket\n$/);
  t.equal(sb.rt(['delete', '--force', id]).status, 0);
  t.same(sb.leaks(), []);
});

t.test('CVE-2025-52565: a /dev/console symlink to a host file is not followed', async (t) => {
  const rootfs = join(sb.dir, 'evil-rootfs');
  makeRootfs(rootfs);
  const hostFile = join(sb.dir, 'host-precious');
  writeFileSync(hostFile, 'untouched\n');
  const evilDev = join(sb.dir, 'evil-dev');
  mkdirSync(evilDev);
  symlinkSync(hostFile, join(evilDev, 'console'));
  const c = ttyConfig(['true']);
  c.root = { path: rootfs, readonly: false };
  c.mounts = c.mounts.filter((m) => !m.destination.startsWith('/dev'));
  c.mounts.push({ destination: '/dev', type: 'bind', source: evilDev, options: ['rbind'] });
  c.mounts.push({ destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['newinstance', 'ptmxmode=0666'] });
  c.linux.maskedPaths = [];
  // /dev/ptmx must exist for the pty: the container's own devpts one
  symlinkSync('pts/ptmx', join(evilDev, 'ptmx'));
  const { sock, r } = await receiver('');
  const id = sb.id();
  const cr = sb.rt(['create', '--console-socket', sock, '--bundle', sb.bundle(c), id]);
  t.not(cr.status, 0);
  t.match(cr.stderr, /^tsrun: terminal: create \/dev\/console: ELOOP\n$/);
  t.equal(readFileSync(hostFile, 'utf8'), 'untouched\n');
  t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(hostFile), 'nothing bound over the host file');
  t.equal(sb.state(id), null);
  void r;
});
