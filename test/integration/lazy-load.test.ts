// What each verb evaluates is part of its cost: state/start/kill/delete/
// pause/resume must not run the validators, the plan builder, the native layer (lib/sys) or yargs.
// Both bundles (the compiled executable and the Node one) record every module
// as its body runs (lib/build/plugins.mjs) and `--debug` prints the list, so
// this looks at the executable that ships, not a build made for the test.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, TSRUN } from '../lib/harness';
import { koffiPrebuilt, loadKoffi } from '../../lib/sys/native-files';

const sb = new Sandbox('lazy');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const NODE = process.env.TSRUN_ENGINE === 'node';
// on Node, a preload also records the built-in modules a call loaded
const probe = join(sb.dir, 'probe.js');
writeFileSync(probe, `
const fs = require('fs');
const before = new Set(process.moduleLoadList);
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
  fs.writeFileSync(process.env.PROBE_OUT, JSON.stringify(builtins));
});
`);

interface Loads { modules: string[]; builtins: string[]; status: number | null; out: string }

function loads(args: string[]): Loads {
  const out = join(sb.dir, `probe-${Math.random().toString(36).slice(2)}.json`);
  const log = join(sb.dir, 'probe.log');
  const fd = openSync(log, 'w');
  // `env -i`: tap instruments the node processes its tests spawn (its loaders
  // alone load streams, workers and crypto); stdio are files, as a created
  // container keeps what it inherits
  const cmd = NODE ? [process.execPath, '-r', probe, TSRUN] : [TSRUN];
  const r = spawnSync('/usr/bin/env', ['-i', `PATH=${process.env.PATH}`, `PROBE_OUT=${out}`, ...cmd, '--debug', '--root', sb.root, ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const text = readFileSync(log, 'utf8');
  // runc's --debug format: time="..." level=debug msg="<JSON-quoted text>"
  const line = text.split('\n').find((l) => l.includes('modules evaluated: '));
  const msg = line && /^time="[^"]+" level=debug msg=(".*")$/.exec(line);
  return {
    modules: msg ? (JSON.parse(msg[1]!) as string).slice('modules evaluated: '.length).trim().split(' ') : [],
    builtins: NODE ? (JSON.parse(readFileSync(out, 'utf8')) as string[]) : [],
    status: r.status,
    out: text,
  };
}

// what only create (and exec, for the stage glue) may evaluate
const HEAVY: [string, (m: string) => boolean][] = [
  ['the validators', (m) => m === 'lib/_build/validators.cjs'],
  ['the spec checks', (m) => m === 'lib/spec/index.ts'],
  ['the plan builder', (m) => m === 'lib/plan/index.ts'],
  ['the native layer (lib/sys)', (m) => m === 'lib/sys/index.ts'],
  ['the seccomp compiler', (m) => m === 'lib/seccomp/index.ts'],
  ['yargs', (m) => m.startsWith('node_modules/yargs') || m === 'lib/cli/yargs.ts'],
];
const HEAVY_BUILTINS = ['tty', 'net', 'stream', 'perf_hooks', 'internal/fs/rimraf', 'os'];

function heavyIn(l: Loads): string[] {
  return HEAVY.filter(([, is]) => l.modules.some(is)).map(([name]) => name);
}

t.test('the lifecycle verbs evaluate none of create\'s modules', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '30']));
  const c = loads(['create', '--bundle', b, id]);
  t.equal(c.status, 0, `create succeeds ${c.out}`);
  t.ok(c.modules.includes('lib/cli/main.ts'), 'the list is there (the marks work)');
  t.same(heavyIn(c), ['the validators', 'the spec checks', 'the plan builder', 'the native layer (lib/sys)'], 'create: the validators, the spec checks, the plan, the native layer; no seccomp compiler without linux.seccomp, no yargs');
  if (NODE) t.same(c.builtins.filter((m) => HEAVY_BUILTINS.includes(m) && m !== 'os'), [], `create: none of ${HEAVY_BUILTINS.join(', ')} but os`);
  for (const args of [['state', id], ['start', id], ['pause', id], ['resume', id], ['kill', id, 'KILL']]) {
    const l = loads(args);
    t.equal(l.status, 0, `${args[0]} succeeds`);
    t.ok(l.modules.includes('lib/runtime/lifecycle.ts'), `${args[0]}: the lifecycle module ran`);
    t.same(heavyIn(l), [], `${args[0]}: none of ${HEAVY.map(([n]) => n).join(', ')}`);
    if (NODE) t.same(l.builtins.filter((m) => HEAVY_BUILTINS.includes(m)), [], `${args[0]}: none of ${HEAVY_BUILTINS.join(', ')}`);
  }
  for (let i = 0; i < 200 && sb.state(id)?.status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 10));
  const d = loads(['delete', id]);
  t.equal(d.status, 0, 'delete succeeds');
  t.same(heavyIn(d), [], 'delete: none of create\'s modules');
});

t.test('exec evaluates the plan builder and the native layer, not the validators', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '30']));
  t.equal(spawnSync(TSRUN, ['--root', sb.root, 'run', '-d', '--bundle', b, id], { stdio: 'ignore' }).status, 0, 'run -d');
  const l = loads(['exec', id, 'true']);
  t.equal(l.status, 0, 'exec succeeds');
  t.same(heavyIn(l), ['the plan builder', 'the native layer (lib/sys)'], 'exec: the plan and the native layer only');
  if (NODE) t.same(l.builtins.filter((m) => HEAVY_BUILTINS.includes(m)), [], 'no tty/net/streams without a terminal');
  spawnSync(TSRUN, ['--root', sb.root, 'delete', '-f', id], { stdio: 'ignore' });
});

t.test('help evaluates yargs (the check can see it)', async (t) => {
  const l = loads(['state', '--no-such-flag', 'x']);
  t.not(l.status, 0, 'an unknown flag fails');
  t.ok(heavyIn(l).includes('yargs'), `yargs was evaluated for the error text: ${l.modules.join(' ')}`);
});

t.test('koffi on Node: the prebuilt module exists here; without it the package entry is used', { skip: !NODE && 'Node only (the executable binds with bun:ffi)' }, async (t) => {
  t.ok(existsSync(koffiPrebuilt()), `prebuilt koffi at ${koffiPrebuilt()}`);
  const k = loadKoffi(join(sb.dir, 'no-such-koffi.node'));
  t.type(k.load, 'function', 'fallback: a working koffi from require("koffi")');
});
