// A tsrun killed with SIGKILL half-way through create: the hook it was
// running dies with it, the waiting init exits, and `delete` cleans up the
// rest (state dir, cgroups); nothing is left behind.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, sleepMs } from '../lib/harness';

const sb = new Sandbox('crash');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

for (const phase of ['prestart', 'createContainer'] as const) {
  t.test(`kill -9 of tsrun during a ${phase} hook`, async (t) => {
    const id = sb.id();
    const pidFile = join(sb.dir, `${id}.hookpid`);
    const c = defaultConfig(['true']);
    // the host pid of the hook shell: the parent of cut, read from the host's
    // procfs ($$ would be a pid of the container's namespace for createContainer)
    c.hooks = { [phase]: [{ path: '/bin/sh', args: ['sh', '-c', `cut -d' ' -f4 /proc/self/stat > ${pidFile}; exec sleep 60`] }] };
    const b = sb.bundle(c);
    const child = spawn(sb.bin, ['--root', sb.root, 'create', '--bundle', b, id], { stdio: 'ignore' });
    const end = Date.now() + 10_000;
    while (!existsSync(pidFile) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    sleepMs(50);
    const hookPid = Number(readFileSync(pidFile, 'utf8'));
    t.ok(alive(hookPid), 'the hook runs');
    const st = sb.state(id);
    t.equal(st?.status, 'creating', 'state says creating while create runs');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const gone = Date.now() + 5000;
    while (alive(hookPid) && Date.now() < gone) sleepMs(10);
    t.notOk(alive(hookPid), 'the hook died with tsrun');
    const initPid = st?.pid ?? 0;
    while (initPid && alive(initPid) && Date.now() < gone) sleepMs(10);
    t.notOk(initPid && alive(initPid), 'the init exited when tsrun went away');
    t.equal(sb.state(id)?.status, 'stopped');
    const d = sb.rt(['delete', id]);
    t.equal(d.status, 0, d.stderr);
    t.same(sb.leaks(), [], 'nothing left behind');
  });
}

t.test('kill -9 of create at random moments: delete --force leaves nothing (50 trials)', async (t) => {
  // spread over the whole create: from before the state dir exists to after the init waits
  const c = defaultConfig(['true']);
  const b = sb.bundle(c);
  const problems: string[] = [];
  for (let i = 0; i < 50; i++) {
    const id = sb.id('rnd');
    const child = spawn(sb.bin, ['--root', sb.root, 'create', '--bundle', b, id], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
    child.kill('SIGKILL');
    await exited;
    const d = sb.rt(['delete', '--force', id]);
    if (d.status !== 0) problems.push(`trial ${i}: delete --force exited ${d.status}: ${d.stderr.trim()}`);
    const leaks = sb.leaks();
    if (leaks.length) problems.push(`trial ${i}: ${leaks.join(', ')}`);
  }
  t.same(problems, [], 'no state dir, cgroup, mount or process left after any trial');
});

/** kill -9 of `tsrun ARGS` after a random delay below MAX_MS, then what CLEAN does; leaks listed. */
async function killTrials(t: Test, what: string, trials: number, maxMs: number,
  setup: (id: string) => string[], after?: (id: string) => void): Promise<void> {
  const problems: string[] = [];
  for (let i = 0; i < trials; i++) {
    const id = sb.id(what.replace(/\W+/g, ''));
    const args = setup(id);
    const child = spawn(sb.bin, ['--root', sb.root, ...args], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * maxMs)));
    child.kill('SIGKILL');
    await exited;
    after?.(id);
    const d = sb.rt(['delete', '--force', id]);
    if (d.status !== 0) problems.push(`trial ${i}: delete --force exited ${d.status}: ${d.stderr.trim()}`);
    const leaks = sb.leaks();
    if (leaks.length) problems.push(`trial ${i}: ${leaks.join(', ')}`);
  }
  t.same(problems, [], `${what}: no state dir, cgroup, mount or process left after any of ${trials} trials`);
}

t.test('kill -9 of create with a user namespace and hooks, at random moments', async (t) => {
  const c = defaultConfig(['true']);
  c.linux.namespaces.push({ type: 'user' });
  c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  c.hooks = { prestart: [{ path: '/bin/true' }], createContainer: [{ path: '/bin/true' }] };
  const b = sb.bundle(c);
  await killTrials(t, 'create-userns-hooks', 40, 60, (id) => ['create', '--bundle', b, id]);
});

t.test('kill -9 of a foreground run at random moments', async (t) => {
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  await killTrials(t, 'run', 40, 60, (id) => ['run', '--bundle', b, id]);
});

t.test('kill -9 of exec at random moments: the container keeps only what it ran, delete --force leaves nothing', async (t) => {
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  await killTrials(t, 'exec', 40, 50, (id) => {
    const r = sb.rt(['run', '-d', '--bundle', b, id]);
    if (r.status !== 0) throw new Error(r.stderr);
    return ['exec', id, 'true'];
  });
});

t.test('kill -9 of delete at random moments: a second delete --force finishes the job', async (t) => {
  const b = sb.bundle(defaultConfig(['sleep', '1000']));
  await killTrials(t, 'delete', 40, 25, (id) => {
    const r = sb.rt(['run', '-d', '--bundle', b, id]);
    if (r.status !== 0) throw new Error(r.stderr);
    return ['delete', '--force', id];
  });
});
