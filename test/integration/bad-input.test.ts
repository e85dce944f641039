// Broken bundles and configs: each gets one clear error line on stderr, a
// non-zero exit, and afterwards there is no state dir, cgroup, mount or
// process left of it.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, type Config } from '../lib/harness';

const sb = new Sandbox('bad');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const failHook = join(sb.dir, 'fail-hook.sh');
writeFileSync(failHook, '#!/bin/sh\necho "hook says no" >&2\nexit 3\n');
chmodSync(failHook, 0o755);

type Case = {
  name: string;
  /** a config to modify, or raw text for config.json */
  config?: (c: Config) => void;
  raw?: string;
  /** args instead of "create --bundle B ID" */
  args?: (bundle: string, id: string) => string[];
  error: RegExp;
  /** a warning, not an error: the container is created */
  ok?: boolean;
  /** the host has what the case needs absent */
  skip?: boolean;
};

const cases: Case[] = [
  { name: 'bad JSON', raw: '{"ociVersion": "1.0.2", ', error: /config\.json: invalid JSON/ },
  { name: 'empty config.json', raw: '', error: /config\.json: invalid JSON/ },
  { name: 'JSON that is not an object', raw: '[]', error: /config\.json: \(root\): must be object/ },
  { name: 'missing config.json', args: (b, id) => ['create', '--bundle', join(b, 'nope'), id], error: /bundle .*nope: not a directory|not found/ },
  { name: 'bundle is a file', args: (b, id) => ['create', '--bundle', join(b, 'config.json'), id], error: /not a directory/ },
  { name: 'ociVersion missing', config: (c) => { delete (c as Partial<Config>).ociVersion; }, error: /ociVersion.*required/ },
  { name: 'root missing', config: (c) => { delete (c as Partial<Config>).root; }, error: /root.*required/ },
  { name: 'process missing', config: (c) => { delete (c as Partial<Config>).process; }, error: /process: required/ },
  { name: 'relative cwd', config: (c) => { c.process.cwd = 'tmp'; }, error: /process\.cwd: must be an absolute path/ },
  { name: 'empty args', config: (c) => { c.process.args = []; }, error: /process\.args: must NOT have fewer than 1 items/ },
  { name: 'negative uid', config: (c) => { c.process.user.uid = -1; }, error: /process\.user\.uid: must be >= 0/ },
  { name: 'uid as a string', config: (c) => { (c.process.user as unknown as { uid: string }).uid = '0'; }, error: /process\.user\.uid: must be integer/ },
  { name: 'unknown namespace type', config: (c) => { c.linux.namespaces.push({ type: 'foo' }); }, error: /linux\.namespaces\[5\]\.type: must be one of/ },
  { name: 'duplicate namespaces', config: (c) => { c.linux.namespaces.push({ type: 'pid' }); }, error: /linux\.namespaces\[5\]: duplicate namespace type pid/ },
  { name: 'missing rootfs', config: (c) => { c.root.path = '/nonexistent/rootfs'; }, error: /rootfs \/nonexistent\/rootfs does not exist/ },
  { name: 'bad container id', args: (b) => ['create', '--bundle', b, 'a/b'], error: /invalid container id format/ },
  { name: 'empty-ish container id', args: (b) => ['create', '--bundle', b, '..'], error: /invalid container id format/ },
  {
    name: 'createRuntime hook fails',
    config: (c) => { c.hooks = { createRuntime: [{ path: failHook }] }; },
    error: /createRuntime hook #0 .*exit status 3, stderr: hook says no/,
  },
  {
    name: 'prestart hook times out',
    config: (c) => { c.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }] }; },
    error: /prestart hook #0 .*timed out after 1s/,
  },
  { name: 'hook path missing', config: (c) => { c.hooks = { createRuntime: [{ path: '/no/such/hook' }] }; }, error: /createRuntime hook #0 \(\/no\/such\/hook\): ENOENT/ },
  {
    name: 'createContainer hook fails',
    config: (c) => { c.hooks = { createContainer: [{ path: failHook }] }; },
    error: /createContainer hook #0 .*exit status 3/,
  },
  { name: 'executable missing', config: (c) => { c.process.args = ['no-such-program']; }, error: /exec: "no-such-program": executable file not found in \$PATH/ },
  { name: 'executable is a directory', config: (c) => { c.process.args = ['/etc']; }, error: /exec: "\/etc": is a directory/ },
  { name: 'executable not executable', config: (c) => { c.process.args = ['/etc/passwd']; }, error: /exec: "\/etc\/passwd": permission denied/ },
  { name: 'cwd missing in the rootfs', config: (c) => { c.process.cwd = '/no/such/dir'; }, error: /chdir to cwd \("\/no\/such\/dir"\).*ENOENT/ },
  { name: 'unknown rlimit', config: (c) => { c.process.rlimits = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]; }, error: /process\.rlimits\[0\]\.type: unknown rlimit type RLIMIT_FOO/ },
  {
    name: 'duplicate rlimit',
    config: (c) => { c.process.rlimits = [{ type: 'RLIMIT_CORE', soft: 1, hard: 1 }, { type: 'RLIMIT_CORE', soft: 1, hard: 1 }]; },
    error: /process\.rlimits\[1\]: duplicate rlimit type RLIMIT_CORE/,
  },
  {
    name: 'unmappable rlimit (above the kernel maximum)',
    config: (c) => { c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2 ** 40 }]; },
    error: /setrlimit 7 .*: EPERM/,
  },
  { name: 'rlimit soft above hard', config: (c) => { c.process.rlimits = [{ type: 'RLIMIT_CORE', soft: 10, hard: 1 }]; }, error: /soft limit 10 exceeds hard limit 1/ },
  // (a relative mount destination is not bad input: config.md reads it as relative to "/", conformance/spec-1.3)
  { name: 'netDevices naming an interface the host lacks', config: (c) => { (c.linux as Record<string, unknown>).netDevices = { tsrunnosuch9: { name: 'x' } }; }, error: /linux\.netDevices\.tsrunnosuch9: find it in the runtime's network namespace: ENODEV/ },
  { name: 'missing bind source', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'bind', source: '/no/such/source', options: ['bind'] }); }, error: /mounts\[6\]: bind \/no\/such\/source on \/mnt: ENOENT/ },
  { name: 'mounts without a mount namespace of its own', config: (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount'); }, error: /^tsrun: config\.json: mounts: needs a mount namespace of the container's own/ },
  { name: 'mount type the kernel lacks', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'nosuchfs', source: 'x' }); }, error: /mounts\[6\]: mount x \(type nosuchfs\) on \/mnt, flags 0x0, data "": ENODEV/ },
  { name: 'unknown mount option', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'tmpfs', source: 'tmpfs', options: ['bogusopt'] }); }, error: /mounts\[6\]: mount tmpfs \(type tmpfs\) on \/mnt, flags 0x0, data "bogusopt": EINVAL/ },
  { name: 'uid mappings without a user namespace', config: (c) => { c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, error: /mappings given without a user namespace/ },
  { name: 'user namespace without mappings', config: (c) => { c.linux.namespaces.push({ type: 'user' }); }, error: /needs both uid and gid mappings/ },
  { name: 'hostname without a uts namespace', config: (c) => { c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'uts'); }, error: /unable to set hostname without a private UTS namespace/ },
  { name: 'namespace path missing', config: (c) => { c.linux.namespaces[1] = { type: 'network', path: '/no/such/ns' }; }, error: /open net namespace \/no\/such\/ns: ENOENT/ },
  { name: 'namespace path of the wrong type', config: (c) => { c.linux.namespaces[1] = { type: 'network', path: '/proc/self/ns/uts' }; }, error: /join net namespace \/proc\/self\/ns\/uts: EINVAL/ },
  { name: 'terminal without a console socket', config: (c) => { c.process.terminal = true; }, error: /cannot allocate tty if tsrun will detach without setting console socket/ },
  { name: 'console socket that nobody listens on', config: (c) => { c.process.terminal = true; }, args: (b, id) => ['create', '--console-socket', '/nonexistent/console.sock', '--bundle', b, id], error: /--console-socket: connect \/nonexistent\/console\.sock: ENOENT/ },
  { name: 'rootfsPropagation not in the enum', config: (c) => { c.linux.rootfsPropagation = 'sideways'; }, error: /linux\.rootfsPropagation: must be one of/ },
  { name: 'unknown sysctl', config: (c) => { c.linux.sysctl = { 'net.no_such_knob': '1' }; }, error: /sysctl net\/no_such_knob: ENOENT/ },
  { name: 'systemd cgroup driver (not implemented yet)', args: (b, id) => ['--systemd-cgroup', 'create', '--bundle', b, id], error: /^tsrun: --systemd-cgroup: the systemd cgroup driver is not implemented in this tsrun yet \(this host (runs|has no) systemd/ },
  { name: '--rootless with a bad value', args: (b, id) => ['--rootless', 'maybe', 'create', '--bundle', b, id], error: /^tsrun: invalid --rootless value "maybe"/ },
  { name: 'oomScoreAdj out of range', config: (c) => { c.process.oomScoreAdj = 5000; }, error: /process\.oomScoreAdj: must be <= 1000/ },
  { name: 'device outside /dev', config: (c) => { c.linux.devices = [{ type: 'c', path: '/etc/evil', major: 1, minor: 3 }]; }, error: /linux\.devices\[0\]\.path: must be under \/dev/ },
  { name: 'a sysctl of the host (not namespaced)', config: (c) => { c.linux.sysctl = { 'vm.max_map_count': '262144' }; }, error: /linux\.sysctl: sysctl "vm\.max_map_count" is not in a separate kernel namespace/ },
  { name: 'a net sysctl without a network namespace', config: (c) => { c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'network'); c.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; }, error: /sysctl "net\.ipv4\.ip_forward" is not allowed in the hosts network namespace/ },
  { name: 'an ipc sysctl in the host ipc namespace', config: (c) => { c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'ipc'); c.linux.sysctl = { 'kernel.shmmax': '1000' }; }, error: /sysctl "kernel\.shmmax" is not allowed in the hosts ipc namespace/ },
  { name: 'an AppArmor profile where AppArmor is not enabled', config: (c) => { (c.process as Record<string, unknown>).apparmorProfile = 'tsrun-test'; }, error: /process\.apparmorProfile: AppArmor is not enabled on this host/, skip: existsSync('/sys/kernel/security/apparmor') },
  { name: 'an SELinux label where SELinux is not enabled', config: (c) => { (c.process as Record<string, unknown>).selinuxLabel = 'system_u:system_r:container_t:s0'; }, error: /process\.selinuxLabel: SELinux is not enabled on this host/, skip: existsSync('/sys/fs/selinux/enforce') },
  { name: 'an invalid execCPUAffinity', config: (c) => { (c.process as Record<string, unknown>).execCPUAffinity = { final: '3-1' }; }, error: /process\.execCPUAffinity\.final: invalid CPU range "3-1"/ },
  { name: 'an unknown ioPriority class', config: (c) => { (c.process as Record<string, unknown>).ioPriority = { class: 'IOPRIO_CLASS_FAST' }; }, error: /process\.ioPriority\.class/ },
  { name: 'idmap without mappings or a user namespace', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'bind', source: '/tmp', options: ['bind', 'idmap'] }); }, error: /mounts\[6\] \(\/mnt\): option idmap without uidMappings\/gidMappings needs a user namespace/ },
  { name: 'idmap on a mount that is not a bind', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'tmpfs', source: 'tmpfs', options: ['idmap'], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] } as never); }, error: /mounts\[6\] \(\/mnt\): idmapped mounts are only supported for bind mounts/ },
  { name: 'idmap of a filesystem that cannot be idmapped', config: (c) => { c.mounts.push({ destination: '/mnt', type: 'bind', source: '/proc/sys', options: ['rbind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1, size: 1 }] } as never); }, error: /mounts\[\d+\]: idmap \/proc\/sys .*: E/ },
  { name: 'bad --log-format', args: (b, id) => ['--log-format', 'xml', 'create', '--bundle', b, id], error: /invalid log-format: xml/ },
  { name: 'negative --preserve-fds', args: (b, id) => ['create', '--preserve-fds', '-1', '--bundle', b, id], error: /preserve-fds/ },
  { name: 'unknown capability is a warning', config: (c) => { c.process.capabilities!.bounding!.push('CAP_NOPE'); }, error: /warning: .*unknown capability "CAP_NOPE" ignored/, ok: true },
];

for (const c of cases) {
  t.test(c.name, { skip: c.skip }, async (t) => {
    const id = sb.id('bad');
    let b: string;
    if (c.raw !== undefined) {
      b = sb.bundle(c.raw);
    } else {
      const cfg = defaultConfig(['true']);
      c.config?.(cfg);
      b = sb.bundle(cfg);
    }
    const args = c.args ? c.args(b, id) : ['create', '--bundle', b, id];
    const r = sb.rt(args);
    if (c.ok) {
      t.equal(r.status, 0, r.stderr);
      t.match(r.stderr, c.error);
      t.equal(sb.rt(['delete', '--force', id]).status, 0);
    } else {
      t.not(r.status, 0, 'non-zero exit');
      const lines = r.stderr.split('\n').filter(Boolean);
      t.equal(lines.length, 1, `one line: ${JSON.stringify(r.stderr)}`);
      t.match(lines[0] ?? '', /^tsrun: /);
      t.match(lines[0] ?? '', c.error);
    }
    t.same(sb.leaks(), [], 'nothing left behind');
  });
}

t.test('existing id', async (t) => {
  const id = sb.id('dup');
  const b = sb.bundle(defaultConfig(['true']));
  t.equal(sb.rt(['create', '--bundle', b, id]).status, 0);
  const r = sb.rt(['create', '--bundle', b, id]);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: container with id exists: /);
  t.equal(sb.state(id)?.status, 'created', 'the first container is untouched');
  t.equal(sb.rt(['delete', id]).status, 0);
});

t.test('unknown verb and unknown flag: usage and non-zero exit', async (t) => {
  // runc exits 3 ("No help topic") for an unknown command, with -h or without
  for (const argv of [['frobnicate'], ['frobnicate', '-h'], ['frobnicate', '--help'], ['help', 'frobnicate'], ['--root', sb.root, 'frobnicate', '-h']]) {
    const r = sb.rt(argv);
    t.equal(r.status, 3, argv.join(' '));
    t.equal(r.stderr, 'tsrun: unknown command "frobnicate"\n');
    t.equal(r.stdout, '', 'no help printed');
  }
  t.equal(sb.rt(['help', 'state']).status, 0, 'help of a real command still works');
  const r2 = sb.rt(['create', '--no-such-flag', 'x']);
  t.not(r2.status, 0);
  t.match(r2.stderr, /flag provided but not defined: -no-such-flag/);
  const r3 = sb.rt(['state']);
  t.not(r3.status, 0, 'missing id');
});

t.test('an init that stops answering during setup: create gives up with a clear error, nothing left', async (t) => {
  // the prestart hook stops the init (SIGSTOP): it never reports ready
  const hook = join(sb.dir, 'stop-init.sh');
  writeFileSync(hook, '#!/bin/sh\npid=$(sed \'s/.*"pid":\\([0-9]*\\).*/\\1/\'); kill -STOP "$pid"\n');
  chmodSync(hook, 0o755);
  const c = defaultConfig(['true']);
  c.hooks = { prestart: [{ path: hook }] };
  const id = sb.id('stuck');
  const t0 = Date.now();
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id], { env: { ...process.env, TSRUN_STAGE_TIMEOUT_MS: '1500' } });
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: container init \d+ did not answer for 1\.5 s during setup \(process state T\)\n$/);
  t.ok(Date.now() - t0 < 10000, 'gave up in time');
  t.equal(sb.state(id), null);
  t.same(sb.leaks(), [], 'nothing left behind');
});

t.test('startContainer hooks and a state too big for their stdin: an error, not an empty stdin', async (t) => {
  const c = defaultConfig(['true']);
  c.annotations = { big: 'x'.repeat(9000) };
  c.hooks = { startContainer: [{ path: '/bin/true' }] };
  const id = sb.id('bigstate');
  const r = sb.rt(['create', '--bundle', sb.bundle(c), id]);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: hooks\.startContainer: the container state is \d+ bytes, over the 8192 the stage takes/);
  t.equal(sb.state(id), null);
  t.same(sb.leaks(), []);
  const ok = defaultConfig(['true']);
  ok.annotations = { big: 'x'.repeat(9000) };
  const id2 = sb.id('bigstate');
  t.equal(sb.rt(['create', '--bundle', sb.bundle(ok), id2]).status, 0, 'without startContainer hooks the size does not matter');
  t.equal(sb.rt(['delete', '--force', id2]).status, 0);
});

t.test('--log with json: one error object, the same message', async (t) => {
  const log = join(sb.dir, 'log.json');
  const id = sb.id('log');
  const b = sb.bundle('{');
  const r = sb.rt(['--log', log, '--log-format', 'json', 'create', '--bundle', b, id]);
  t.not(r.status, 0);
  const text = require('node:fs').readFileSync(log, 'utf8');
  const lines = text.trim().split('\n');
  t.equal(lines.length, 1, 'exactly one JSON object for podman');
  const o = JSON.parse(lines[0]);
  t.equal(o.level, 'error');
  t.match(o.msg, /config\.json: invalid JSON/);
  t.ok(!Number.isNaN(Date.parse(o.time)));
});

t.test('a bundle directory that is unreadable for the config', async (t) => {
  const b = join(sb.dir, 'noconf');
  mkdirSync(b);
  const r = sb.rt(['create', '--bundle', b, sb.id('nc')]);
  t.not(r.status, 0);
  t.match(r.stderr, /^tsrun: JSON specification file .*config\.json not found\n$/);
});
