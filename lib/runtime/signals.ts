import { constants } from 'node:os';
import { TsrunError } from '../errors';

const SIGNALS = constants.signals as Record<string, number>;

/** "KILL", "SIGKILL", "kill", "9" -> 9; unknown -> error in runc's words. */
export function parseSignal(s: string | undefined): number {
  if (s === undefined || s === '') return SIGNALS.SIGTERM!;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new TsrunError(`unknown signal "${s}"`);
    return n;
  }
  let name = s.toUpperCase();
  if (!name.startsWith('SIG')) name = 'SIG' + name;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name);
  if (rt) return 34 + Number(rt[1] ?? 0);
  const rtm = /^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rtm) return 64 - Number(rtm[1] ?? 0);
  const n = SIGNALS[name];
  if (n === undefined) throw new TsrunError(`unknown signal "${s}"`);
  return n;
}

export function signalName(n: number): string {
  for (const [k, v] of Object.entries(SIGNALS)) if (v === n) return k;
  return `signal ${n}`;
}

const FORWARDED = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT', 'SIGALRM'] as const;

/**
 * Relay the signals a foreground run/exec receives to pid; returns the undo.
 * With a terminal, SIGWINCH resizes the pty instead (the kernel tells the
 * container's foreground process group).
 */
export function forwardSignals(pid: number, terminal = false): () => void {
  const handlers: [string, () => void][] = [];
  for (const s of FORWARDED) {
    if (terminal && s === 'SIGWINCH') continue;
    const h = () => {
      try {
        process.kill(pid, SIGNALS[s]);
      } catch {
        /* gone */
      }
    };
    process.on(s, h);
    handlers.push([s, h]);
  }
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}

/** A wait status as a shell reports it: the exit code, or 128+N for signal N. */
export function exitCode(ws: number): number {
  if ((ws & 0x7f) === 0) return (ws >> 8) & 0xff;
  return 128 + (ws & 0x7f);
}
