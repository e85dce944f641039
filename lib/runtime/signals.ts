import { TsrunError } from '../errors';

// Linux's generic signal numbers (x86, arm, arm64, riscv, ppc, s390, ...):
// loading node:os for its table costs ~0.4 ms of every kill. Architectures
// with their own numbering (mips, sparc, alpha) take Node's table.
const GENERIC: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGIOT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16,
  SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24,
  SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPOLL: 29, SIGPWR: 30, SIGSYS: 31,
};
const SIGNALS: Record<string, number> = /^(mips|sparc|alpha)/.test(process.arch)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ? ((require('node:os') as typeof import('node:os')).constants.signals as Record<string, number>)
  : GENERIC;

/** "KILL", "SIGKILL", "kill", "9" -> 9; "0" -> 0 (kill's existence check); unknown -> error in runc's words. */
export function parseSignal(s: string | undefined): number {
  if (s === undefined || s === '') return SIGNALS.SIGTERM!;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 64) throw new TsrunError(`unknown signal "${s}"`);
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
export function forwardSignals(pid: number, terminal = false, send: (sig: number) => void = (sig) => process.kill(pid, sig)): () => void {
  const handlers: [string, () => void][] = [];
  for (const s of FORWARDED) {
    if (terminal && s === 'SIGWINCH') continue;
    const h = () => {
      try {
        send(SIGNALS[s]!);
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
