// linux.seccomp at create: compiled once (lib/seccomp), kept in the state for
// exec; and the listener hand-off of SCMP_ACT_NOTIFY filters: the stage sends
// the listener fd, we pass it on to listenerPath with the container state,
// as runtime-spec config-linux.md#seccomp describes.
import type { LinuxSeccomp } from '../spec/types';
import type { PlanSeccomp } from '../plan';
import type { OciState, StoredSeccomp } from '../state';
import type { Sys } from '../sys';

export function compileForState(s: LinuxSeccomp, debug: (m: string) => void): StoredSeccomp {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { compileSeccomp } = require('../seccomp') as typeof import('../seccomp');
  const c = compileSeccomp(s, process.arch, debug);
  return {
    program: c.program.toString('base64'), flags: c.flags, notify: c.notify,
    listenerPath: s.listenerPath, listenerMetadata: s.listenerMetadata,
  };
}

export function planSeccomp(s: StoredSeccomp | undefined): PlanSeccomp | undefined {
  if (!s) return undefined;
  return { program: Buffer.from(s.program, 'base64'), flags: s.flags, notify: s.notify };
}

/** Hand the listener fd to listenerPath with the containerProcessState JSON. */
export function sendListener(sys: Sys, s: StoredSeccomp, fd: number, pid: number, state: OciState): void {
  const msg = { ociVersion: state.ociVersion, fds: ['seccompFd'], pid, metadata: s.listenerMetadata ?? '', state };
  try {
    sys.sendFdTo(s.listenerPath!, fd, Buffer.from(JSON.stringify(msg)));
  } finally {
    sys.close(fd);
  }
}
