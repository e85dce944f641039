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

/** Relay until the process behind PIDFD (owned from here on) exits. */
export function startRelay(sys: Sys, master: number, pidfd: number): Relay {
  // node:tty pulls in net and streams (~10 ms): only terminals pay for it
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { isatty } = require('node:tty') as typeof import('node:tty');
  const inTty = isatty(0);
  const sizeFrom = inTty ? 0 : isatty(1) ? 1 : -1;
  const saved = inTty ? sys.ttyRaw(0) : undefined;
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
