// Loading a native module from bytes (the compiled executable carries koffi's
// inside it). dlopen() needs a file: each candidate directory gets an
// anonymous O_TMPFILE file, never a name another user could plant or swap,
// and the module is loaded through /proc/self/fd. A directory that is
// noexec, read-only or without O_TMPFILE support is skipped for the next.
import { closeSync, openSync, writeSync } from 'node:fs';

// O_TMPFILE is __O_TMPFILE | O_DIRECTORY on every Linux architecture Bun targets
const O_TMPFILE = 0o20200000;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;

/** Directories tried in turn: tmpfs first (no disk), then $TMPDIR, /tmp, the executable's own. */
export function addonDirs(env = process.env, execDir?: string): string[] {
  const dirs = ['/dev/shm', env.TMPDIR || '/tmp', '/tmp'];
  if (execDir) dirs.push(execDir);
  return [...new Set(dirs)];
}

export function dlopenBytes(name: string, bytes: Uint8Array, dirs: string[]): unknown {
  const why: string[] = [];
  for (const dir of dirs) {
    let fd = -1;
    try {
      fd = openSync(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0o700);
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
      const m = { exports: {} as unknown };
      process.dlopen(m, `/proc/self/fd/${fd}`);
      // left open: dlopen() knows a library by its path, and a later one
      // loaded through /proc/self/fd (libtsrun) must not get the same number
      return m.exports;
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      why.push(`${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  throw new Error(`cannot load ${name} from any of ${dirs.join(', ')} (${why.join('; ')})`);
}
