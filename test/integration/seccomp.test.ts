// tsrun's side of seccomp: exec'd processes get the container's filter, the
// compiled program of podman's default profile is small, bad profiles fail
// with one line and leave nothing, features reports it. The kernel-observed
// behaviour (and runc parity) is conformance/seccomp.test.ts.
import t from 'tap';
import { REQUIRE_ALL, Sandbox, defaultConfig, podmanProfile } from '../lib/harness';

const sb = new Sandbox('scmpi');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const PROFILE = {
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
};

for (const nnp of [true, false]) {
  t.test(`exec runs under the container's filter (noNewPrivileges ${nnp})`, async (t) => {
    const c = defaultConfig(['sleep', '1000']);
    c.process.noNewPrivileges = nnp;
    c.linux.seccomp = PROFILE;
    const id = sb.id();
    const r = sb.rt(['run', '-d', '--bundle', sb.bundle(c), id]);
    t.equal(r.status, 0, r.stderr);
    const e = sb.rt(['exec', id, 'sh', '-c', 'grep Seccomp: /proc/self/status; grep Seccomp: /proc/1/status; mkdir /tmp/x 2>&1']);
    t.match(e.stdout, /^Seccomp:\s+2\nSeccomp:\s+2\nmkdir: can't create directory '\/tmp\/x': Permission denied\n$/);
    const p = sb.rt(['exec', '--process', '/dev/stdin', id], { input: JSON.stringify({ args: ['mkdir', '/tmp/y'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }) });
    t.not(p.status, 0, 'a process.json exec gets it too');
    t.equal(sb.rt(['delete', '--force', id]).status, 0);
  });
}

t.test('podman\'s default profile compiles small and fast (debug timing)', async (t) => {
  const p = podmanProfile(sb);
  if (!p) {
    if (REQUIRE_ALL) t.fail('podman\'s profile is required under CI=true: podman (with containers-common) is not installed');
    else t.skip('podman (with containers-common) is not installed', () => {});
    return;
  }
  const c = defaultConfig(['true']);
  c.linux.seccomp = p;
  const id = sb.id();
  const r = sb.rt(['--debug', 'run', '--bundle', sb.bundle(c), id]);
  t.equal(r.status, 0, r.stderr);
  const { compileSeccomp } = await import('../../lib/seccomp');
  const compiled = compileSeccomp(p as never);
  t.ok(compiled.instructions < 1200, `${compiled.instructions} BPF instructions for ${(p.syscalls as unknown[]).length} rules`);
  t.match(r.stderr, /seccomp compiled/);
});

t.test('bad profiles: one line naming the place, nothing left behind', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ defaultAction: 'SCMP_ACT_BOGUS' }, /linux\.seccomp\.defaultAction/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }, /linux\.seccomp\.syscalls\[0\]: errnoRet is only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.index/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_VAX'] }, /linux\.seccomp\.architectures\[0\]/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /SCMP_ACT_NOTIFY needs listenerPath/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/nonexistent/agent.sock', syscalls: [{ names: ['uselib'], action: 'SCMP_ACT_NOTIFY' }] }, /failed to connect with seccomp agent \(listenerPath \/nonexistent\/agent\.sock\): ENOENT/],
  ];
  for (const [profile, err] of cases) {
    const c = defaultConfig(['true']);
    c.linux.seccomp = profile;
    const id = sb.id();
    const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
    t.not(r.status, 0, JSON.stringify(profile).slice(0, 80));
    t.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, err);
    t.equal(sb.state(id), null);
  }
  t.same(sb.leaks(), []);
  // an unknown syscall name is skipped, with a debug line
  const c = defaultConfig(['true']);
  c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_syscall'], action: 'SCMP_ACT_KILL' }] };
  const r = sb.rt(['--debug', 'run', '--bundle', sb.bundle(c), sb.id()]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /level=debug msg=".*unknown syscall \\"no_such_syscall\\" skipped/);
});

t.test('features reports seccomp', async (t) => {
  const f = JSON.parse(sb.rt(['features']).stdout);
  const s = f.linux.seccomp;
  t.equal(s.enabled, true);
  t.ok(s.actions.includes('SCMP_ACT_NOTIFY'));
  t.ok(s.operators.includes('SCMP_CMP_MASKED_EQ'));
  t.ok(s.archs.includes('SCMP_ARCH_X86_64'));
  t.ok(s.supportedFlags.includes('SECCOMP_FILTER_FLAG_TSYNC'));
});
