// linux.netDevices (config-linux.md#network-devices, spec 1.3): host
// interfaces moved into the container's network namespace under their new
// names, with their addresses, up. The "host" is a network namespace this
// test makes, with a veth pair in it; tsrun runs inside it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { Sandbox, defaultConfig, skipSuite, type Config } from '../lib/harness';

const sb = new Sandbox('netdev');
const NS = `tsrun-nd-${process.pid}`;
const ip = (...a: string[]) => spawnSync('ip', a, { encoding: 'utf8' });

if (ip('-V').status !== 0) skipSuite(t, 'no ip(8) (iproute2)');
t.teardown(() => {
  ip('netns', 'del', NS);
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

t.before(() => {
  for (const a of [['netns', 'add', NS], ['-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
    ['-n', NS, 'addr', 'add', '10.77.0.1/24', 'dev', 'v0'], ['-n', NS, 'link', 'add', 'v2', 'type', 'veth', 'peer', 'name', 'v3']]) {
    const r = ip(...a);
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
  }
});

/** tsrun run inside the test's network namespace */
function runInNs(c: Config) {
  const id = sb.id();
  const b = sb.bundle(c);
  const r = spawnSync('ip', ['netns', 'exec', NS, sb.bin, '--root', sb.root, 'run', '--bundle', b, id], { encoding: 'utf8', timeout: 60_000 });
  return r;
}

t.test('an interface moves in under its new name, keeps its address and is up; the runtime namespace no longer has it', async (t) => {
  const c = defaultConfig(['sh', '-c', 'ip -o -4 addr show eth7 | cut -d" " -f7; cat /sys/class/net/eth7/flags']);
  (c.linux as Record<string, unknown>).netDevices = { v0: { name: 'eth7' } };
  const r = runInNs(c);
  t.equal(r.status, 0, r.stderr);
  const [addr, flags] = r.stdout.trim().split('\n');
  t.equal(addr, '10.77.0.1/24', 'the address it had');
  t.equal(Number(flags) & 1, 1, 'IFF_UP');
  t.not(ip('-n', NS, 'link', 'show', 'v0').status, 0, 'gone from the runtime namespace (the veth ends with the container)');
});

t.test('a tap device moves in too', async (t) => {
  const r0 = ip('-n', NS, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  t.equal(r0.status, 0, `make a tap device: ${r0.stderr.trim()}`);
  if (r0.status !== 0) return;
  const c = defaultConfig(['sh', '-c', 'cat /sys/class/net/tap9/tun_flags']);
  (c.linux as Record<string, unknown>).netDevices = { tap0: { name: 'tap9' } };
  const r = runInNs(c);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^0x\d+\n$/, 'a tun/tap device named tap9 in the container');
});

t.test('a %d template takes the first free name', async (t) => {
  const c = defaultConfig(['sh', '-c', 'ls /sys/class/net | grep net']);
  (c.linux as Record<string, unknown>).netDevices = { v2: { name: 'net%d' } };
  const r = runInNs(c);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'net0\n');
});

t.test('bad netDevices: one clear line, nothing left, the interface stays where it was', async (t) => {
  ip('-n', NS, 'link', 'add', 'v4', 'type', 'veth', 'peer', 'name', 'v5');
  const cases: [string, (c: Config) => void, RegExp][] = [
    ['a name the container has (lo)', (c) => { (c.linux as Record<string, unknown>).netDevices = { v4: { name: 'lo' } }; }, /linux\.netDevices\.v4: its name in the container's network namespace: EEXIST/],
    ['no such interface', (c) => { (c.linux as Record<string, unknown>).netDevices = { nosuch0: {} }; }, /linux\.netDevices\.nosuch0: find it in the runtime's network namespace: ENODEV/],
    ['an invalid name', (c) => { (c.linux as Record<string, unknown>).netDevices = { v4: { name: 'a/b' } }; }, /linux\.netDevices\.v4\.name: "a\/b" is not an interface name/],
    ['no network namespace', (c) => { c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'network'); (c.linux as Record<string, unknown>).netDevices = { v4: {} }; }, /has no network namespace of its own/],
  ];
  for (const [what, mod, re] of cases) {
    const c = defaultConfig(['true']);
    mod(c);
    const r = runInNs(c);
    t.not(r.status, 0, what);
    t.match(r.stderr, re, what);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    t.same(sb.leaks(), [], `${what}: nothing left`);
  }
  t.equal(ip('-n', NS, 'link', 'show', 'v4').status, 0, 'v4 is still in the runtime namespace');
});
