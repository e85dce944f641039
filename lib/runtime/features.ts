// features: what this build supports, in the runtime-spec features.md shape.
// Honest: what is refused today is reported as not enabled.
import { CAPS, NAMESPACES } from '../spec/tables';
import { SPEC_VERSION } from '../spec/version';
import { MOUNT_OPTIONS } from '../plan/mounts';
import { MEMPOLICY_FLAGS, MEMPOLICY_MODES } from '../plan/mempolicy';
import { hostLsms } from './lsm';
import { resctrlRoot } from '../intelrdt';
import { readFileSync } from 'node:fs';

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}
import { ACTIONS, ARCHES, FLAGS, HOST_ARCHES, OPERATORS } from '../seccomp';

export function features(version: string): Record<string, unknown> {
  // labels are written where the LSM is enabled and refused where it is not: usable here or not
  const lsm = hostLsms();
  const rdt = resctrlRoot(readMountinfo()) !== undefined;
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: SPEC_VERSION,
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
      apparmor: { enabled: lsm.apparmor },
      selinux: { enabled: lsm.selinux },
      // CLOS and schemata where resctrl is mounted (an error where not); no monitoring
      intelRdt: { enabled: rdt, schemata: rdt, monitoring: false },
      memoryPolicy: { modes: MEMPOLICY_MODES, flags: MEMPOLICY_FLAGS },
      netDevices: { enabled: true },
      mountExtensions: { idmap: { enabled: true } },
    },
    // tsrun acts on no annotation, unsafe or not
    potentiallyUnsafeConfigAnnotations: [],
    annotations: { 'io.github.tsrun.version': version },
  };
}
