// features: what this build supports, in the runtime-spec features.md shape.
// Honest: what is refused today is reported as not enabled.
import { CAPS, NAMESPACES } from '../spec/tables';
import { ACTIONS, ARCHES, FLAGS, HOST_ARCHES, OPERATORS } from '../seccomp';

const MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'lazytime', 'mand', 'noatime',
  'nodev', 'nodiratime', 'noexec', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'nosymfollow',
  'private', 'ratime', 'rbind', 'rdev', 'rdiratime', 'relatime', 'remount', 'rexec', 'rnoatime', 'rnodev',
  'rnodiratime', 'rnoexec', 'rnorelatime', 'rnostrictatime', 'rnosuid', 'rnosymfollow', 'ro', 'rprivate',
  'rrelatime', 'rro', 'rrw', 'rshared', 'rslave', 'rstrictatime', 'rsuid', 'rsymfollow', 'runbindable', 'rw',
  'shared', 'slave', 'strictatime', 'suid', 'symfollow', 'sync', 'unbindable', 'idmap', 'ridmap',
];

export function features(version: string): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.3.0',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: Object.keys(NAMESPACES),
      capabilities: CAPS,
      // rdma: resources.rdma is applied (rdma.max), refused where the host has no rdma controller
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true },
      seccomp: {
        enabled: true,
        actions: [...ACTIONS],
        operators: [...OPERATORS],
        // what this kernel's architecture can run; other arches in a profile are ignored
        archs: (HOST_ARCHES[process.arch] ?? []).filter((a) => a in ARCHES),
        knownFlags: Object.keys(FLAGS),
        supportedFlags: Object.keys(FLAGS),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: { 'io.github.tsrun.version': version },
  };
}
