// OCI hooks: the state JSON on stdin, the hook's own args and env, a timeout.
// Hooks that run in the container namespaces go through the stage's nsexec.
import { accessSync, constants } from 'node:fs';
import { TsrunError } from '../errors';
import type { Hook } from '../spec/types';

export type HookPhase = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export interface HookRunOptions {
  /** run inside the namespaces of this pid, through the stage program */
  nsPid?: number;
  /** with nsPid: the working directory there (createContainer: the rootfs, as runc) */
  nsCwd?: string;
  /**
   * a path executing the stage program (a sealed memfd: no hook process, in
   * the container's namespaces or not, has a host file as its /proc/PID/exe);
   * hooks run through it so that they die with tsrun
   */
  stageExe: () => string;
}

function envObject(env: string[] | undefined): NodeJS.ProcessEnv {
  if (!env) return process.env;
  const o: NodeJS.ProcessEnv = {};
  for (const e of env) {
    const i = e.indexOf('=');
    if (i > 0) o[e.slice(0, i)] = e.slice(i + 1);
  }
  return o;
}

/** Run one hook; throws a TsrunError naming the phase, index and path on failure. */
export function runHook(phase: HookPhase, index: number, hook: Hook, state: string, opts: HookRunOptions): void {
  const args = hook.args?.length ? hook.args : [hook.path];
  const what = `${phase} hook #${index} (${hook.path})`;
  if (!opts.nsPid) {
    try {
      accessSync(hook.path, constants.X_OK);
    } catch (e) {
      throw new TsrunError(what, { errno: (e as NodeJS.ErrnoException).code });
    }
  }
  const file = opts.stageExe();
  // nsexec: into the container's namespaces; hook: PR_SET_PDEATHSIG. Either
  // way the stage then execs the hook, and a kill -9 of tsrun takes it along.
  const argv = opts.nsPid ? ['nsexec', String(opts.nsPid), opts.nsCwd ?? '', hook.path, ...args] : ['hook', String(process.pid), hook.path, ...args];
  const argv0 = 'tsrun:hook';
  // loaded here, not at the top: child_process pulls in net and friends
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(file, argv, {
    argv0,
    env: envObject(hook.env),
    input: state,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
  });
  // EPIPE: the hook exited without reading its stdin (allowed); its exit status decides
  const unread = (r.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && (r.status !== null || r.signal !== null);
  if (r.error && !unread) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new TsrunError(`${what}: timed out after ${hook.timeout}s`);
    throw new TsrunError(`${what}: ${code ?? r.error.message}`);
  }
  if (r.status !== 0) {
    const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    const err = r.stderr?.toString().trim();
    throw new TsrunError(`${what}: ${how}${err ? `, stderr: ${err.split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

export function runHooks(phase: HookPhase, hooks: Hook[] | undefined, state: string, opts: HookRunOptions): void {
  for (const [i, h] of (hooks ?? []).entries()) runHook(phase, i, h, state, opts);
}
