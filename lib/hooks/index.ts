// OCI hooks: the state JSON on stdin, the hook's own args and env, a timeout.
// Hooks that run in the container namespaces go through the stage's nsexec.
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors';
import type { Hook } from '../state';

export type HookPhase = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export interface HookRunOptions {
  /** run inside the namespaces of this pid, through the stage program */
  nsPid?: number;
  /** the stage program: hooks run through it so that they die with tsrun */
  stagePath?: string;
}


/** The stage binary next to the bundle (lib/_build -> native/build). */
export function defaultStagePath(): string | undefined {
  const p = join(__dirname, '..', '..', 'native', 'build', 'tsrun-stage');
  return existsSync(p) ? p : undefined;
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
  const what = `${phase} hook #${index} (${hook.path})`;
  if (!opts.nsPid) {
    try {
      accessSync(hook.path, constants.X_OK);
    } catch (e) {
      throw new TsrunError(what, { errno: (e as NodeJS.ErrnoException).code });
    }
  }
  const stage = opts.stagePath ?? defaultStagePath();
  if (opts.nsPid && stage) {
    file = stage;
    argv = ['nsexec', String(opts.nsPid), hook.path, ...args];
    argv0 = 'tsrun:hook';
  } else if (stage) {
    // PR_SET_PDEATHSIG, then exec: a kill -9 of tsrun takes the hook along
    file = stage;
    argv = ['hook', String(process.pid), hook.path, ...args];
    argv0 = 'tsrun:hook';
  }
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
