// OCI hooks: the state JSON on stdin, the hook's own args and env, a timeout.
// Hooks that run in the container namespaces go through the stage's nsexec.
import { spawnSync } from 'node:child_process';
import { TsrunError } from '../errors';
import type { Hook } from '../state';

export type HookPhase = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export interface HookRunOptions {
  /** run inside the namespaces of this pid, through the stage program */
  nsPid?: number;
  stagePath?: string;
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
export function runHook(phase: HookPhase, index: number, hook: Hook, state: string, opts: HookRunOptions = {}): void {
  const args = hook.args?.length ? hook.args : [hook.path];
  let file = hook.path;
  let argv = args.slice(1);
  let argv0 = args[0];
  if (opts.nsPid) {
    file = opts.stagePath!;
    argv = ['nsexec', String(opts.nsPid), hook.path, ...args];
    argv0 = 'tsrun:hook';
  }
  const r = spawnSync(file, argv, {
    argv0,
    env: envObject(hook.env),
    input: state,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
  });
  const what = `${phase} hook #${index} (${hook.path})`;
  if (r.error) {
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

export function runHooks(phase: HookPhase, hooks: Hook[] | undefined, state: string, opts?: HookRunOptions): void {
  for (const [i, h] of (hooks ?? []).entries()) runHook(phase, i, h, state, opts);
}
