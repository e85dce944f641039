// What each verb loads is part of its cost (issue 8): these guard the
// lazy-loading that keeps tsrun's calls near Node's own start. A module that
// slips back onto a hot path (node:tty pulled net and the streams into every
// create, ~10 ms) or a verb that starts loading koffi fails here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, defaultConfig, TSRUN } from '../lib/harness';
import { koffiPrebuilt, loadKoffi } from '../../lib/sys';

const sb = new Sandbox('lazy');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

// a preload that records, at exit, the built-in modules and files the call loaded
const probe = join(sb.dir, 'probe.js');
writeFileSync(probe, `
const fs = require('fs');
const before = new Set(process.moduleLoadList);
process.on('exit', () => {
  const out = process.env.PROBE_OUT;
  const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
  fs.writeFileSync(out, JSON.stringify({ builtins, files: Object.keys(require.cache) }));
});
`);

function loads(args: string[]): { builtins: string[]; files: string[]; status: number | null } {
  const out = join(sb.dir, `probe-${Math.random().toString(36).slice(2)}.json`);
  const log = join(sb.dir, 'probe.log');
  const fd = openSync(log, 'w');
  // `env -i`: tap instruments the node processes its tests spawn (its loaders
  // alone load streams, workers and crypto); stdio are files, as a created
  // container keeps what it inherits
  const r = spawnSync('/usr/bin/env', ['-i', `PATH=${process.env.PATH}`, `PROBE_OUT=${out}`, process.execPath, '-r', probe, TSRUN, '--root', sb.root, ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { ...(JSON.parse(readFileSync(out, 'utf8')) as { builtins: string[]; files: string[] }), status: r.status };
}

const HEAVY_BUILTINS = ['tty', 'net', 'stream', 'perf_hooks', 'internal/fs/rimraf', 'os'];

t.test('create, state, start, kill, delete load only what they need', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '30']));
  const verbs: [string, string[]][] = [
    ['create', ['create', '--bundle', b, id]],
    ['state', ['state', id]],
    ['start', ['start', id]],
    ['kill', ['kill', id, 'KILL']],
  ];
  for (const [name, args] of verbs) {
    const l = loads(args);
    t.equal(l.status, 0, `${name} succeeds`);
    const bad = l.builtins.filter((m) => HEAVY_BUILTINS.includes(m));
    // create reads the owner's name through node:os (userInfo)
    t.same(bad.filter((m) => !(name === 'create' && m === 'os')), [], `${name}: none of ${HEAVY_BUILTINS.join(', ')}`);
    const koffi = l.files.some((f) => f.endsWith('.node'));
    t.equal(koffi, name === 'create', `${name}: koffi ${name === 'create' ? 'loaded' : 'not loaded'}`);
    if (name === 'create') {
      t.ok(l.files.includes(koffiPrebuilt()), 'koffi\'s prebuilt module is loaded directly, not through its package entry');
      t.notOk(l.files.some((f) => f.includes('/koffi/index') || f.includes('/koffi/src/')), 'koffi\'s package entry is not loaded');
      t.notOk(l.files.some((f) => f.endsWith('exec.cjs') || f.endsWith('yargs-cli.cjs')), 'no exec or yargs bundle');
    } else {
      t.notOk(l.files.some((f) => f.endsWith('heavy.cjs') || f.endsWith('admin.cjs')), `${name}: neither heavy.cjs nor admin.cjs loaded`);
    }
  }
  for (let i = 0; i < 200 && sb.state(id)?.status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 10));
  const d = loads(['delete', id]);
  t.equal(d.status, 0, 'delete succeeds');
  t.same(d.builtins.filter((m) => HEAVY_BUILTINS.includes(m)), [], `delete: none of ${HEAVY_BUILTINS.join(', ')}`);
  t.notOk(d.files.some((f) => f.endsWith('.node') || f.endsWith('heavy.cjs')), 'delete: no koffi, no heavy.cjs');
});

t.test('exec loads its own bundle, not create\'s', async (t) => {
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sleep', '30']));
  t.equal(spawnSync(TSRUN, ['--root', sb.root, 'run', '-d', '--bundle', b, id], { stdio: 'ignore' }).status, 0, 'run -d');
  const l = loads(['exec', id, 'true']);
  t.equal(l.status, 0, 'exec succeeds');
  t.ok(l.files.some((f) => f.endsWith('exec.cjs')), 'exec.cjs');
  t.notOk(l.files.some((f) => f.endsWith('heavy.cjs')), 'not heavy.cjs (validators, create)');
  t.same(l.builtins.filter((m) => HEAVY_BUILTINS.includes(m)), [], 'no tty/net/streams without a terminal');
  spawnSync(TSRUN, ['--root', sb.root, 'delete', '-f', id], { stdio: 'ignore' });
});

t.test('koffi: the prebuilt module exists here; without it the package entry is used', async (t) => {
  t.ok(existsSync(koffiPrebuilt()), `prebuilt koffi at ${koffiPrebuilt()}`);
  const k = loadKoffi(join(sb.dir, 'no-such-koffi.node'));
  t.type(k.load, 'function', 'fallback: a working koffi from require("koffi")');
});
