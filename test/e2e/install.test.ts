// tsrun installs like a real tool: `npm pack` gives a tarball that
// `npm install -g` installs into a fresh prefix (the native part is built
// there by the package's install script), and the installed `tsrun` on that
// prefix's PATH runs a container.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, REPO, defaultConfig } from '../lib/harness';

const sb = new Sandbox('inst');
t.teardown(() => {
  const leaks = sb.cleanup();
  if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
});

t.test('npm pack, npm install -g into a temp prefix, run a container with the installed tsrun', async (t) => {
  // --ignore-scripts: lib/_build is already built (npm test builds first)
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', sb.dir], { cwd: REPO, encoding: 'utf8' });
  t.equal(pack.status, 0, pack.stderr);
  const tgz = readdirSync(sb.dir).find((f) => f.endsWith('.tgz'));
  t.ok(tgz, 'a tarball');
  const list = spawnSync('tar', ['-tzf', join(sb.dir, tgz!)], { encoding: 'utf8' }).stdout;
  t.match(list, /package\/lib\/_build\/tsrun\.cjs/, 'the built CLI is in the package');
  t.notMatch(list, /package\/native\/build\//, 'no prebuilt native binaries: they are built on install');
  const prefix = join(sb.dir, 'prefix');
  const inst = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--allow-scripts=tsrun,koffi', join(sb.dir, tgz!)], { encoding: 'utf8', timeout: 240000 });
  t.equal(inst.status, 0, inst.stderr);
  const bin = join(prefix, 'bin', 'tsrun');
  t.ok(existsSync(bin), 'tsrun on the prefix\'s PATH');
  t.ok(existsSync(join(prefix, 'lib', 'node_modules', 'tsrun', 'native', 'build', 'tsrun-stage')), 'the stage was built at install');
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  t.match(v.stdout, /^tsrun version \d+\.\d+\.\d+/);
  const id = sb.id();
  const b = sb.bundle(defaultConfig(['sh', '-c', 'echo installed-ok $(id -u)']));
  const r = spawnSync(bin, ['--root', sb.root, 'run', '--bundle', b, id], { encoding: 'utf8', env: { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}` } });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'installed-ok 0\n');
});
