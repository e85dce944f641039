// spec: write a default config.json like runc's (runc spec [--rootless]).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TsrunError } from '../errors';
import { writeAtomic } from '../state';
import type { Spec } from '../spec/types';
import { SPEC_VERSION } from '../spec/version';

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export function defaultSpec(rootless: boolean): Spec {
  const s: Spec = {
    ociVersion: SPEC_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'tsrun',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  if (rootless) {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const l = s.linux!;
    delete l.resources;
    l.namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }];
    l.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
    l.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
    s.mounts = s.mounts!.map((m) => {
      if (m.destination === '/sys') return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
      if (m.destination === '/dev/pts') return { ...m, options: m.options!.filter((o) => o !== 'gid=5') };
      return m;
    });
  }
  return s;
}

export function writeSpec(bundle: string | undefined, rootless: boolean): void {
  const dir = resolve(bundle ?? '.');
  const file = join(dir, 'config.json');
  if (!existsSync(dir)) throw new TsrunError(`chdir ${dir}`, { errno: 'ENOENT' });
  if (existsSync(file)) throw new TsrunError('File config.json exists. Remove it first');
  writeAtomic(file, JSON.stringify(defaultSpec(rootless), null, '\t'), 0o666 & ~process.umask());
}
