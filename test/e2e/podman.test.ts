// podman drives the runtime end to end, with conmon, a locally built image
// and podman's default seccomp profile in force: run, exec (with and without
// a tty), pause/unpause, stop (TERM, then KILL), kill -s, restart, rm -f, and
// a failing create. podman's config, storage, tmp and the runtime's state all
// live under a temp dir. RUNTIME=runc runs the same test against runc.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, REPO, cgroupMounts, skipSuite, sleepMs } from '../lib/harness';
import { buildBusyboxImage } from '../lib/image';

if (spawnSync('podman', ['--version']).status !== 0) skipSuite(t, 'podman is not installed (.ci/run installs it)');

const sb = new Sandbox('pdm');
const D = sb.dir;
const IMAGE = 'docker.io/library/busybox:tsrun-e2e';
const BIN = sb.bin.startsWith('/') ? sb.bin : spawnSync('sh', ['-c', `command -v ${sb.bin}`], { encoding: 'utf8' }).stdout.trim();
const parentsBefore = new Set(cgroupMounts().filter((h) => existsSync(join(h, 'libpod_parent'))));
const env = { ...process.env, CONTAINERS_CONF: join(D, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(D, 'storage.conf') };

function podman(args: string[], opts: { timeout?: number } = {}) {
  const r = spawnSync('podman', args, { encoding: 'utf8', env, input: '', timeout: opts.timeout ?? 60000, killSignal: 'SIGKILL' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? ''), stdout: (r.stdout ?? '').trim() };
}

t.before(() => {
  // podman passes no --root: the wrapper gives the runtime one under the temp dir
  const w = join(D, 'runtime');
  writeFileSync(w, `#!/bin/sh\nexec ${BIN} --root ${D}/state "$@"\n`);
  chmodSync(w, 0o755);
  writeFileSync(join(D, 'containers.conf'), `[containers]
netns = "none"
# this machine forbids raising the hard limits podman asks for by default
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${D}/events.log"
tmp_dir = "${D}/tmp"
runtime = "under-test"
# without this podman passes no --log/--log-format to the runtime
runtime_supports_json = ["crun", "runc", "under-test"]
[engine.runtimes]
under-test = ["${w}"]
`);
  writeFileSync(join(D, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${D}/storage"\nrunroot = "${D}/run"\n`);
  const img = buildBusyboxImage(D, 'tsrun-e2e');
  const r = podman(['load', '-i', img]);
  if (r.status !== 0) throw new Error(`podman load: ${r.out}`);
});

t.teardown(() => {
  podman(['rm', '-a', '-f', '-t', '0']);
  podman(['rmi', '-a', '-f']);
  spawnSync('sh', ['-c', `grep " ${D}" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l`]);
  // libpod_parent (and conmon's cgroup in it) if we made them; conmon may
  // still be exiting, so retry for a few seconds
  let left = false;
  for (let i = 0; i < 50; i++) {
    left = false;
    for (const h of cgroupMounts()) {
      if (parentsBefore.has(h) || !existsSync(join(h, 'libpod_parent'))) continue;
      spawnSync('find', [join(h, 'libpod_parent'), '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
      left ||= existsSync(join(h, 'libpod_parent'));
    }
    if (!left) break;
    sleepMs(100);
  }
  const leaks = sb.cleanup();
  if (left) leaks.push('cgroup libpod_parent (conmon\'s) in some hierarchy');
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const status = (name: string) => podman(['inspect', '--format', '{{.State.Status}}', name]).stdout;

t.test('run --rm: output, exit code, podman\'s default seccomp profile in force', async (t) => {
  const r = podman(['run', '--rm', IMAGE, 'sh', '-c', 'echo out-$((6*7)); grep Seccomp: /proc/self/status; exit 3']);
  t.equal(r.status, 3, r.out);
  t.match(r.out, /out-42/);
  t.match(r.out, /Seccomp:\s+2/, 'filter mode: a profile is loaded');
});

t.test('run -d, exec with and without a tty, pause/unpause, kill -s, restart, rm -f', async (t) => {
  t.equal(podman(['run', '-d', '--name', 'p1', IMAGE, 'sh', '-c', 'trap "echo usr1 >> /tmp/sig" USR1; while :; do sleep 0.1; done']).status, 0);
  const ex = podman(['exec', 'p1', 'sh', '-c', 'echo from-exec; exit 4']);
  t.equal(ex.status, 4, ex.out);
  t.match(ex.out, /from-exec/);
  const tty = podman(['exec', '-t', 'p1', 'tty']);
  t.equal(tty.status, 0, tty.out);
  t.match(tty.out, /\/dev\/pts\/\d+/);
  const it = ttyPodman(['exec', '-it', 'p1', 'sh', '-c', 'read l; echo "got:$l"; stty size; exit 6'], 'typed\n');
  t.equal(it.status, 6, it.out);
  t.match(it.out, /got:typed/);
  t.match(it.out, /^24 80$/m);
  t.equal(podman(['pause', 'p1']).status, 0);
  t.equal(status('p1'), 'paused');
  t.equal(podman(['unpause', 'p1']).status, 0);
  t.equal(status('p1'), 'running');
  t.equal(podman(['kill', '-s', 'USR1', 'p1']).status, 0);
  let got = '';
  for (let i = 0; i < 100 && !got.includes('usr1'); i++) {
    got = podman(['exec', 'p1', 'cat', '/tmp/sig']).out;
    sleepMs(50);
  }
  t.match(got, /usr1/, 'the signal reached the container');
  const before = podman(['inspect', '--format', '{{.State.Pid}}', 'p1']).stdout;
  t.equal(podman(['restart', '-t', '0', 'p1']).status, 0);
  t.equal(status('p1'), 'running');
  t.not(podman(['inspect', '--format', '{{.State.Pid}}', 'p1']).stdout, before, 'a new init');
  t.equal(podman(['rm', '-f', '-t', '0', 'p1']).status, 0);
  t.notOk(podman(['ps', '-a', '--format', '{{.Names}}']).stdout.split('\n').includes('p1'));
});

t.test('stop: TERM first, KILL after the timeout', async (t) => {
  t.equal(podman(['run', '-d', '--name', 'p2', IMAGE, 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']).status, 0);
  sleepMs(300);
  t.equal(podman(['stop', '-t', '5', 'p2']).status, 0);
  t.equal(podman(['inspect', '--format', '{{.State.ExitCode}}', 'p2']).stdout, '0', 'exited on TERM');
  t.equal(podman(['run', '-d', '--name', 'p3', IMAGE, 'sleep', '1000']).status, 0);
  const s = podman(['stop', '-t', '1', 'p3']);
  t.equal(s.status, 0, s.out);
  t.equal(podman(['inspect', '--format', '{{.State.ExitCode}}', 'p3']).stdout, '137', 'KILLed after the timeout (pid 1 ignores TERM)');
  t.equal(podman(['rm', '-f', '-t', '0', 'p2', 'p3']).status, 0);
});

t.test('a failing create shows the runtime\'s message, classified as podman does', async (t) => {
  const nf = podman(['run', '--rm', IMAGE, '/no/such/binary']);
  t.equal(nf.status, 127, nf.out);
  t.match(nf.out, /\/no\/such\/binary.*no such file or directory/);
  const np = podman(['run', '--rm', IMAGE, 'no-such-command']);
  t.equal(np.status, 127, np.out);
  t.match(np.out, /executable file not found in \$PATH/);
  const perm = podman(['run', '--rm', IMAGE, '/etc/passwd']);
  t.equal(perm.status, 126, perm.out);
  t.match(perm.out, /permission denied/);
});

let ttytool: string | undefined;
function ttyPodman(args: string[], input: string) {
  if (!ttytool) {
    ttytool = join(D, 'ttytool');
    const b = spawnSync('cc', ['-O2', '-o', ttytool, join(REPO, 'test', 'helpers', 'ttytool.c')], { encoding: 'utf8' });
    if (b.status !== 0) throw new Error(b.stderr);
  }
  const r = spawnSync(ttytool, ['pty', '24x80', '24x80', 'podman', ...args], { encoding: 'utf8', input, env, timeout: 60000 });
  return { status: r.status, out: (r.stdout ?? '').replace(/\r/g, '') };
}
