// Foreground terminals: when run/exec have a terminal but no console socket,
// tsrun holds the pty master and relays between the caller's stdio and it,
// as runc does: the caller's tty goes raw (restored afterwards), its window
// size follows SIGWINCH. The copying itself is a native loop on a worker
// thread (lib/sys relay), so Node's event loop stays free for signals.
import { resolve } from 'node:path';
import { TsrunError } from '../errors';
import type { Sys } from '../sys';

export interface Relay {
  /** resolves when the pty hung up or the process exited and its output is drained */
  done: Promise<void>;
}

function isatty(fd: number): boolean {
  // node:tty pulls in net and streams (~10 ms): only terminals pay for it
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:tty') as typeof import('node:tty')).isatty(fd);
}

/** The caller's terminal whose size the pty follows, or -1. */
function sizeSource(): number {
  return isatty(0) ? 0 : isatty(1) ? 1 : -1;
}

/**
 * Give the pty the caller's size. exec calls this before letting the process
 * go: a process that asks for its size at once must not see 0x0.
 */
export function copyCallerSize(sys: Sys, master: number): void {
  const from = sizeSource();
  if (from >= 0) sys.winsizeCopy(from, master);
}

/** Relay until the process behind PIDFD (owned from here on) exits. */
export function startRelay(sys: Sys, master: number, pidfd: number): Relay {
  const sizeFrom = sizeSource();
  const saved = sizeFrom === 0 ? sys.ttyRaw(0) : undefined;
  const resize = () => {
    if (sizeFrom >= 0) sys.winsizeCopy(sizeFrom, master);
  };
  resize();
  process.on('SIGWINCH', resize);
  const done = sys.relay(master, 0, 1, pidfd).finally(() => {
    process.off('SIGWINCH', resize);
    if (saved) sys.ttyRestore(0, saved);
    sys.close(pidfd);
    sys.close(master);
  });
  return { done };
}

/** runc's rules for process.terminal and --console-socket; the plan's socket ("" = to us). */
export function terminalSocket(terminal: boolean | undefined, consoleSocket: string | undefined, relay: boolean): string | undefined {
  if (consoleSocket !== undefined && consoleSocket !== '') {
    if (!terminal) throw new TsrunError('cannot use console socket if tsrun will not detach or allocate tty');
    return resolve(consoleSocket);
  }
  if (!terminal) return undefined;
  if (!relay) throw new TsrunError('cannot allocate tty if tsrun will detach without setting console socket');
  return '';
}
