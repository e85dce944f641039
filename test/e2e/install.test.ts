// tsrun installs like a real tool: the compiled executable carries everything
// (the stage, libtsrun, koffi's native module), so a plain copy of it works
// anywhere, and `npm pack` gives a tarball that `npm install -g` installs into
// a fresh prefix with nothing to build and no dependency to fetch.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, REPO, defaultConfig } from '../lib/harness';

const sb = new Sandbox('inst');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

const EXE = join(REPO, 'bin', 'tsrun');

/** A container run by BIN with a cwd and PATH outside the checkout. */
function runWith(t: Test, bin: string, cwd: string) {
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', cwd });
  t.match(v.stdout, /^tsrun version \d+\.\d+\.\d+\nspec: 1\.3\.0\nbun: /, 'the compiled executable answers --version');
  const id = sb.id();
  const c = defaultConfig(['sh', '-c', 'echo installed-ok $(id -u)']);
  // hooks run through the embedded stage too
  const mark = join(sb.dir, `${id}.hooked`);
  c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${mark}`] }] };
  const r = spawnSync(bin, ['--root', sb.root, 'run', '--bundle', sb.bundle(c), id], { encoding: 'utf8', cwd, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'installed-ok 0\n');
  t.match(readFileSync(mark, 'utf8'), new RegExp(`"id":"${id}"`), 'the createRuntime hook ran with the state on stdin');
}

t.test('a copy of bin/tsrun outside the checkout runs a container', async (t) => {
  t.ok(statSync(EXE).mode & 0o111, 'bin/tsrun is an executable (npm run build)');
  const dir = join(sb.dir, 'copy', 'bin');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'tsrun');
  copyFileSync(EXE, bin);
  spawnSync('chmod', ['0755', bin]);
  runWith(t, bin, sb.dir);
  const ldd = spawnSync('ldd', [bin], { encoding: 'utf8' }).stdout;
  t.notMatch(ldd, new RegExp(REPO.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no library of the checkout is linked');
});

t.test('npm pack, npm install -g into a temp prefix, run a container with the installed tsrun', async (t) => {
  // --ignore-scripts: bin/tsrun is already built (npm test builds first)
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', sb.dir], { cwd: REPO, encoding: 'utf8' });
  t.equal(pack.status, 0, pack.stderr);
  const tgz = readdirSync(sb.dir).find((f) => f.endsWith('.tgz'));
  t.ok(tgz, 'a tarball');
  const list = spawnSync('tar', ['-tzf', join(sb.dir, tgz!)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
  t.same(list, ['package/LICENSE', 'package/README.md', 'package/bin/tsrun', 'package/package.json'], 'the package is the executable, its license and README');
  const prefix = join(sb.dir, 'prefix');
  // --offline: the package has no dependencies, nothing is fetched
  const inst = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(sb.dir, tgz!)], { encoding: 'utf8', timeout: 240000 });
  t.equal(inst.status, 0, inst.stderr);
  const bin = join(prefix, 'bin', 'tsrun');
  t.ok(existsSync(bin), 'tsrun on the prefix\'s PATH');
  runWith(t, bin, sb.dir);
});
