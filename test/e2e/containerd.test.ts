// containerd drives the runtime end to end: a private daemon (own config,
// root, state, sockets under a temp dir, CRI off), a busybox image built here
// and imported (no registry), and ctr doing every task operation. Once with
// `ctr run --runc-binary`, once with the runtime found as `runc` on the
// daemon's PATH, the way a containerd installed for tsrun runs it.
// RUNTIME=runc runs the same test against runc: it must pass too.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, REPO, cgroupMounts, skipSuite, sleepMs } from '../lib/harness';
import { buildBusyboxImage } from '../lib/image';

const HAVE = spawnSync('containerd', ['--version']).status === 0 && spawnSync('ctr', ['--version']).status === 0;
if (!HAVE) skipSuite(t, 'containerd is not installed (.ci/run installs it)');

const sb = new Sandbox('ctd');
const D = sb.dir;
const SOCK = join(D, 'c.sock');
const IMAGE = 'docker.io/library/busybox:tsrun-e2e';
const RUNC_ROOT = join(D, 'runc-root');
// an absolute path: the wrapper named runc must not find itself
const BIN = sb.bin.startsWith('/') ? sb.bin : spawnSync('sh', ['-c', `command -v ${sb.bin}`], { encoding: 'utf8' }).stdout.trim();
let daemon: ChildProcess | undefined;
// parents the runtime creates for containerd's cgroupsPath /default/<id>
const parentsBefore = new Set(cgroupMounts().filter((h) => existsSync(join(h, 'default'))));

/**
 * The runtime as `runc` for the shim: the shim passes --root
 * /run/containerd/runc/<ns>; the wrapper keeps that under our temp dir.
 */
function wrapper(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const w = join(dir, 'runc');
  writeFileSync(w, `#!/bin/sh
# the shim's --root, moved under the test's temp dir
n=$#; i=0; skip=0
for a in "$@"; do
  i=$((i+1))
  if [ $skip = 1 ]; then set -- "$@" "${RUNC_ROOT}/$(basename "$a")"; skip=0
  elif [ "$a" = --root ]; then set -- "$@" "$a"; skip=1
  else set -- "$@" "$a"; fi
done
shift $n
exec ${BIN} "$@"
`);
  chmodSync(w, 0o755);
  return dir;
}

/** ctr's fifos (run, task exec) go under the temp dir, not /run/containerd/fifo */
function withFifoDir(args: string[]): string[] {
  if (args[0] === 'run') return ['run', '--fifo-dir', join(D, 'fifo'), ...args.slice(1)];
  if (args[0] === 'task' && args[1] === 'exec') return ['task', 'exec', '--fifo-dir', join(D, 'fifo'), ...args.slice(2)];
  return args;
}

function ctr(args: string[], opts: { input?: string; timeout?: number } = {}) {
  args = withFifoDir(args);
  const r = spawnSync('ctr', ['-a', SOCK, ...args], { encoding: 'utf8', input: opts.input ?? '', timeout: opts.timeout ?? 60000, killSignal: 'SIGKILL' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? ''), stdout: r.stdout ?? '' };
}

t.before(async () => {
  const bin = wrapper(join(D, 'bin'));
  writeFileSync(join(D, 'config.toml'), `version = 2
root = "${D}/root"
state = "${D}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${SOCK}"
[ttrpc]
  address = "${SOCK}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${D}/opt"
`);
  daemon = spawn('containerd', ['--config', join(D, 'config.toml')], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, stdio: ['ignore', 'ignore', 'ignore'],
  });
  // a test run that is killed (timeout) must not leave the daemon behind
  process.on('exit', () => {
    try {
      if (daemon?.pid && daemon.exitCode === null) process.kill(daemon.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  for (let i = 0; i < 200 && !existsSync(SOCK); i++) sleepMs(25);
  if (!existsSync(SOCK)) throw new Error('containerd did not start');
  const img = buildBusyboxImage(D, 'tsrun-e2e');
  const r = ctr(['images', 'import', img]);
  if (r.status !== 0) throw new Error(`import: ${r.out}`);
});

t.teardown(async () => {
  // tasks and containers first, then the daemon (by pid), then its mounts
  for (const id of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['task', 'kill', '-s', 'KILL', id]);
  sleepMs(300);
  for (const id of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['task', 'delete', '-f', id]);
  for (const id of ctr(['containers', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['containers', 'rm', id]);
  ctr(['images', 'rm', IMAGE]);
  if (daemon?.pid) {
    process.kill(daemon.pid, 'SIGTERM');
    await new Promise((r) => (daemon!.exitCode !== null ? r(null) : daemon!.once('exit', r)));
  }
  spawnSync('sh', ['-c', `grep " ${D}" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l`]);
  for (const h of cgroupMounts()) {
    if (!parentsBefore.has(h) && existsSync(join(h, 'default'))) spawnSync('rmdir', [join(h, 'default')]);
  }
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const MODES: [string, string[]][] = [
  ['ctr run --runc-binary', ['--runc-binary', BIN, '--runc-root', RUNC_ROOT]],
  ['the runtime as runc on the daemon\'s PATH', []],
];

let n = 0;
const id = (tag: string) => `e2e-${tag}-${process.pid}-${++n}`;

for (const [mode, runFlags] of MODES) {
  t.test(mode, async (t) => {
    t.test('run --rm: output and exit code', async (t) => {
      const r = ctr(['run', '--rm', ...runFlags, IMAGE, id('rm'), 'sh', '-c', 'echo out-$((6*7)); exit 3']);
      t.equal(r.status, 3, r.out);
      t.match(r.out, /out-42/);
    });

    t.test('run -d; exec with and without a tty; ps; pause/resume; metrics; kill; delete', async (t) => {
      const c = id('d');
      t.equal(ctr(['run', '-d', ...runFlags, IMAGE, c, 'sleep', '1000']).status, 0);
      const ex = ctr(['task', 'exec', '--exec-id', 'e1', c, 'sh', '-c', 'echo from-exec; exit 4']);
      t.equal(ex.status, 4, ex.out);
      t.match(ex.out, /from-exec/);
      // -t needs a terminal on ctr's side: a pty
      const tt = ttyCtr(['task', 'exec', '-t', '--exec-id', 'e2', c, 'sh', '-c', 'tty; exit 5']);
      t.equal(tt.status, 5, tt.out);
      t.match(tt.out, /\/dev\/pts\/\d+/);
      const ps = ctr(['task', 'ps', c]);
      t.equal(ps.status, 0, ps.out);
      t.match(ps.out, /^\d+\s/m, 'the init pid');
      t.equal(ctr(['task', 'pause', c]).status, 0);
      t.match(ctr(['task', 'ls']).out, new RegExp(`${c}\\s+\\d+\\s+PAUSED`));
      t.equal(ctr(['task', 'resume', c]).status, 0);
      t.match(ctr(['task', 'ls']).out, new RegExp(`${c}\\s+\\d+\\s+RUNNING`));
      const m = ctr(['task', 'metrics', c]);
      t.equal(m.status, 0, m.out);
      t.match(m.out, /memory\.usage_in_bytes|memory\.current|pids/);
      t.equal(ctr(['task', 'kill', '-s', 'KILL', c]).status, 0);
      t.ok(waitStatus(c, 'STOPPED'), 'stopped');
      t.equal(ctr(['task', 'delete', c]).status, 0);
      t.equal(ctr(['containers', 'rm', c]).status, 0);
    });

    t.test('kill with TERM (trapped, exits 0) and kill --all', async (t) => {
      const c = id('term');
      t.equal(ctr(['run', '-d', ...runFlags, IMAGE, c, 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']).status, 0);
      sleepMs(300);
      t.equal(ctr(['task', 'kill', '-s', 'TERM', c]).status, 0);
      t.ok(waitStatus(c, 'STOPPED'));
      t.equal(ctr(['task', 'delete', c]).status, 0, 'exit status 0 is reported by delete');
      t.equal(ctr(['containers', 'rm', c]).status, 0);
      const all = id('all');
      t.equal(ctr(['run', '-d', ...runFlags, IMAGE, all, 'sh', '-c', 'sleep 1000 & sleep 1000 & wait']).status, 0);
      sleepMs(300);
      t.equal(ctr(['task', 'kill', '-a', '-s', 'KILL', all]).status, 0);
      t.ok(waitStatus(all, 'STOPPED'));
      t.equal(ctr(['task', 'delete', all]).status, 0);
      t.equal(ctr(['containers', 'rm', all]).status, 0);
    });

    t.test('a create that fails shows the runtime\'s error through ctr', async (t) => {
      const r = ctr(['run', '--rm', ...runFlags, IMAGE, id('bad'), '/no/such/binary']);
      t.not(r.status, 0);
      t.match(r.out, /OCI runtime create failed: .*\/no\/such\/binary.*(ENOENT|no such file or directory)/);
      t.notOk(ctr(['containers', 'ls', '-q']).stdout.includes('bad'), 'ctr removed the container');
    });
  });
}

function waitStatus(c: string, status: string): boolean {
  for (let i = 0; i < 200; i++) {
    if (new RegExp(`${c}\\s+\\d+\\s+${status}`).test(ctr(['task', 'ls']).out)) return true;
    sleepMs(25);
  }
  return false;
}

let ttytool: string | undefined;
/** ctr on a real terminal (ctr -t insists on one). */
function ttyCtr(args: string[]) {
  if (!ttytool) {
    ttytool = join(D, 'ttytool');
    const b = spawnSync('cc', ['-O2', '-o', ttytool, join(REPO, 'test', 'helpers', 'ttytool.c')], { encoding: 'utf8' });
    if (b.status !== 0) throw new Error(b.stderr);
  }
  const r = spawnSync(ttytool, ['pty', '24x80', '24x80', 'ctr', '-a', SOCK, ...withFifoDir(args)], { encoding: 'utf8', input: '', timeout: 60000 });
  return { status: r.status, out: (r.stdout ?? '').replace(/\r/g, '') };
}

