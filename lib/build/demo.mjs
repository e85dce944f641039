// Builds the default demo bundle from Debian's busybox-static (no network, no
// image): DIR/rootfs with busybox and its applet links, DIR/config.json like
// `tsrun spec` but without a terminal and with a command that says hello.
// Usage: node lib/build/demo.mjs DIR
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const dir = resolve(process.argv[2] ?? 'demo-bundle');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  console.error('busybox not found: apt-get install busybox-static');
  process.exit(1);
}
rmSync(join(dir, 'config.json'), { force: true });
const rootfs = join(dir, 'rootfs');
for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
copyFileSync(busybox, join(rootfs, 'bin', 'busybox'));
chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
for (const a of spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n')) {
  if (!a || a === 'busybox' || existsSync(join(rootfs, 'bin', a))) continue;
  symlinkSync('busybox', join(rootfs, 'bin', a));
}
writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\n');
const tsrun = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', 'bin', 'tsrun');
const r = spawnSync(tsrun, ['spec', '--bundle', dir], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const cfgPath = join(dir, 'config.json');
const cfg = JSON.parse((await import('node:fs')).readFileSync(cfgPath, 'utf8'));
cfg.process.terminal = false;
cfg.process.args = ['sh', '-c', 'echo "Hello from a tsrun container: hostname $(hostname), pid $$, uid $(id -u), $(ls /proc | grep -c "^[0-9]") process(es) visible"'];
writeFileSync(cfgPath, JSON.stringify(cfg, null, '\t'));
console.error(`bundle ready in ${dir}`);
