// linux.seccomp at create: compiled once (lib/seccomp), kept in the state for
// exec; and the listener hand-off of SCMP_ACT_NOTIFY filters: the stage sends
// the listener fd, we pass it on to listenerPath with the container state,
// as runtime-spec config-linux.md#seccomp describes.
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LinuxSeccomp } from '../spec/types';
import { writeAtomic } from '../state';
import type { PlanSeccomp } from '../plan';
import type { OciState, StoredSeccomp } from '../state';
import type { Sys } from '../sys';

/**
 * Compile, or reuse what an earlier create compiled from the same profile:
 * containerd and podman send the same default profile for every container.
 * The cache (under --root) is keyed by the profile, the arch and this very
 * build of tsrun (its bundle's size and mtime), so a new tsrun recompiles.
 */
export function compileForState(s: LinuxSeccomp, debug: (m: string) => void, cacheDir?: string): StoredSeccomp {
  const listener = { listenerPath: s.listenerPath, listenerMetadata: s.listenerMetadata };
  let file: string | undefined;
  let key = '';
  if (cacheDir) {
    let build = '';
    try {
      const st = statSync(__filename);
      build = `${st.size}:${st.mtimeMs}`;
    } catch {
      /* no key part */
    }
    // the whole key is stored and compared: the file name is only a hash
    // (node:crypto would cost more than it saves: ~7 ms to load)
    key = `${build}\0${process.arch}\0${JSON.stringify(s)}`;
    file = join(cacheDir, `${hash53(key).toString(16)}.json`);
    try {
      const hit = JSON.parse(readFileSync(file, 'utf8')) as StoredSeccomp & { key: string };
      if (hit.key === key) {
        debug('seccomp: compiled program from the cache');
        return { program: hit.program, flags: hit.flags, notify: hit.notify, ...listener };
      }
    } catch {
      /* compile */
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { compileSeccomp } = require('../seccomp') as typeof import('../seccomp');
  const c = compileSeccomp(s, process.arch, debug);
  const out: StoredSeccomp = { program: c.program.toString('base64'), flags: c.flags, notify: c.notify, ...listener };
  if (file && cacheDir) {
    try {
      mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      writeAtomic(file, JSON.stringify({ key, program: out.program, flags: out.flags, notify: out.notify }), 0o600);
    } catch (e) {
      debug(`seccomp: cache not written: ${(e as Error).message}`);
    }
  }
  return out;
}

/** cyrb53: a fast 53-bit string hash, for cache file names only. */
function hash53(str: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export function planSeccomp(s: StoredSeccomp | undefined): PlanSeccomp | undefined {
  if (!s) return undefined;
  return { program: Buffer.from(s.program, 'base64'), flags: s.flags, notify: s.notify };
}

/** Hand the listener fd to listenerPath with the containerProcessState JSON. */
export function sendListener(sys: Sys, s: StoredSeccomp, fd: number, pid: number, state: OciState): void {
  const msg = { ociVersion: state.ociVersion, fds: ['seccompFd'], pid, metadata: s.listenerMetadata ?? '', state };
  try {
    sys.sendFdTo(s.listenerPath!, fd, Buffer.from(JSON.stringify(msg)), `failed to connect with seccomp agent (listenerPath ${s.listenerPath})`);
  } finally {
    sys.close(fd);
  }
}
