// No verb may wait forever on a stage or init that will never answer (a hung
// mount source, a cgroup frozen under it): between two of its messages it may
// be silent this long. TSRUN_STAGE_TIMEOUT_MS shortens it (tests).
import { readFileSync } from 'node:fs';

export const STAGE_SILENCE_MS = Number(process.env.TSRUN_STAGE_TIMEOUT_MS) > 0 ? Number(process.env.TSRUN_STAGE_TIMEOUT_MS) : 120_000;

/** The error for a silent PID, with its process state (D: in the kernel, T: stopped). */
export function stuckMessage(pid: number, ms: number): string {
  let state = '';
  try {
    state = / \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '';
  } catch {
    /* gone */
  }
  return `container init ${pid} did not answer for ${ms / 1000} s during setup${state ? ` (process state ${state})` : ''}`;
}
