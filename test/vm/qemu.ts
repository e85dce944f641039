// A pure cgroup v2 machine for the tests: this host runs hybrid cgroups, so
// the full v2 controller set needs another kernel. Debian's kernel boots
// under qemu's software emulation (~5 s a round trip) with the host's / shared
// read-only over virtio-9p and a read-write share for the command and its
// results; `cgroup_no_v1=all` leaves only the unified hierarchy, with every
// controller enabled at the root. ../shared/CGROUP-V2-VM.md has the numbers.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the guest needs; their dependencies are found with modinfo and loaded first. */
const WANTED = ['virtio_pci', '9pnet_virtio', '9p', 'null_blk'];

export interface Vm {
  kernel: string;
  modules: string;
}

/** The kernel and its modules, or why the VM cannot run here. */
export function findVm(): Vm | string {
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return 'qemu-system-x86 is not installed';
  if (process.arch !== 'x64') return 'the VM harness is for x86_64 hosts';
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-.*-amd64$/.test(f)).sort() : [];
  const k = kernels.pop();
  if (!k) return 'no Debian kernel in /boot (linux-image-amd64)';
  const version = k.slice('vmlinuz-'.length);
  const modules = join('/lib/modules', version);
  if (!existsSync(modules)) return `no modules for ${version}`;
  return { kernel: join('/boot', k), modules };
}

/** newc cpio of a directory tree of regular files and directories. */
function cpio(root: string): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const hdr = (name: string, mode: number, size: number) => {
    const f = (n: number) => n.toString(16).padStart(8, '0');
    const h = `070701${f(ino++)}${f(mode)}${f(0)}${f(0)}${f(1)}${f(0)}${f(size)}${f(0)}${f(0)}${f(0)}${f(0)}${f(name.length + 1)}${f(0)}`;
    const b = Buffer.from(`${h}${name}\0`);
    parts.push(b, Buffer.alloc((4 - (b.length % 4)) % 4));
  };
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        hdr(r, 0o040755, 0);
        walk(r);
      } else {
        const data = readFileSync(join(root, r));
        hdr(r, 0o100755, data.length);
        parts.push(data, Buffer.alloc((4 - (data.length % 4)) % 4));
      }
    }
  };
  walk('');
  hdr('TRAILER!!!', 0, 0);
  return Buffer.concat(parts);
}

function initramfs(vm: Vm, work: string): string {
  const d = join(work, 'initramfs');
  mkdirSync(join(d, 'bin'), { recursive: true });
  mkdirSync(join(d, 'lib'), { recursive: true });
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p))!;
  copyFileSync(busybox, join(d, 'bin', 'busybox'));
  // dependency order: a module after everything it depends on
  const version = vm.modules.split('/').pop()!;
  const order: string[] = [];
  const visit = (m: string) => {
    if (order.includes(m)) return;
    const deps = spawnSync('modinfo', ['-k', version, '-F', 'depends', m], { encoding: 'utf8' }).stdout.trim();
    for (const dep of deps.split(',').filter(Boolean)) visit(dep);
    const f = spawnSync('modinfo', ['-k', version, '-n', m], { encoding: 'utf8' }).stdout.trim();
    if (f.endsWith('.ko')) {
      copyFileSync(f, join(d, 'lib', `${m}.ko`));
      order.push(m);
    }
  };
  for (const m of WANTED) visit(m);
  writeFileSync(join(d, 'init'), `#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /proc /dev /newroot
$B mount -t proc proc /proc
$B mount -t devtmpfs dev /dev
for m in ${order.join(' ')}; do $B insmod /lib/$m.ko; done
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /newroot
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /newroot/mnt
$B umount /proc
$B umount /dev
exec $B switch_root /newroot /bin/busybox sh /mnt/stage2.sh
`);
  const out = join(work, 'initramfs.cpio');
  writeFileSync(out, cpio(d));
  return out;
}

export interface VmResult {
  /** the command's exit status, or null when the VM did not get that far */
  status: number | null;
  /** the command's stdout+stderr */
  output: string;
  /** the serial console: kernel and init messages */
  console: string;
  ms: number;
}

/**
 * Boot, run `sh -c script` as root in the guest (cwd: the share, at /mnt),
 * power off. Files the script writes to /mnt land in work/share. The guest's
 * / is the host's, read-only; /run is its writable scratch (TMPDIR=/run/tmp).
 */
export function runInVm(vm: Vm, work: string, script: string, timeoutMs = 300000): VmResult {
  const share = join(work, 'share');
  mkdirSync(share, { recursive: true });
  writeFileSync(join(share, 'cmd.sh'), script);
  const B = '/bin/busybox';
  writeFileSync(join(share, 'stage2.sh'), `B=${B}
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$B mount -t tmpfs tmpfs /dev/shm
# scratch space on /run only: /tmp and the rest stay the host's (read-only),
# where the checkout under test may live
$B mount -t tmpfs tmpfs /run
$B mkdir -p /run/tmp
export TMPDIR=/run/tmp
$B mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
$B hostname tsrun-v2-vm
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
cd /mnt
/bin/sh /mnt/cmd.sh > /mnt/out.log 2>&1
echo $? > /mnt/rc
$B sync
$B poweroff -f
`);
  chmodSync(join(share, 'stage2.sh'), 0o755);
  const initrd = initramfs(vm, work);
  const t0 = Date.now();
  const r = spawnSync('qemu-system-x86_64', [
    '-accel', 'tcg,thread=multi', '-cpu', 'max', '-m', '2G', '-smp', '2', '-nodefaults', '-nographic',
    '-serial', 'stdio', '-no-reboot',
    '-kernel', vm.kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 quiet panic=-1 cgroup_no_v1=all rdinit=/init',
    '-fsdev', 'local,id=r,path=/,security_model=passthrough,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=r,mount_tag=hostroot',
    '-fsdev', `local,id=s,path=${share},security_model=passthrough,multidevs=remap`,
    '-device', 'virtio-9p-pci,fsdev=s,mount_tag=share',
  ], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'pipe'] });
  const rcFile = join(share, 'rc');
  const status = existsSync(rcFile) ? Number(readFileSync(rcFile, 'utf8').trim()) : null;
  const output = existsSync(join(share, 'out.log')) ? readFileSync(join(share, 'out.log'), 'utf8') : '';
  return { status, output, console: (r.stdout ?? '') + (r.stderr ?? ''), ms: Date.now() - t0 };
}
