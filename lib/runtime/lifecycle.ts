// start, state, kill, delete, list: the verbs that work from the state dir
// alone. None of them loads the native layer, ajv or the plan builder.
import { closeSync, constants as fsc, existsSync, openSync, readSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors';
import { ContainerCgroups } from '../cgroups/manager';
import { runHooks } from '../hooks';
import {
  deriveStatus, initAlive, ociState, procStat, sleep, type OciState, type StoredState,
} from '../state';
import type { Context } from './context';
import { parseSignal } from './signals';

export function start(ctx: Context, id: string): void {
  const st = ctx.store.load(id);
  const unlock = ctx.store.lock(id);
  try {
    const status = deriveStatus(ctx.store, st);
    if (status === 'stopped') throw new TsrunError('cannot start a container that has stopped');
    if (status !== 'created') throw new TsrunError('cannot start an already running container');
    const fifo = ctx.store.fifo(id);
    let fd: number;
    try {
      fd = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK | 0o2000000 /* O_CLOEXEC */);
    } catch (e) {
      throw new TsrunError('cannot start an already running container', { cause: e });
    }
    try {
      // The init is blocked opening the fifo for writing; our open releases
      // it and it writes one byte. Until then a read sees EAGAIN or EOF.
      const b = Buffer.alloc(8192);
      // startContainer hooks run before the init answers; they have their own timeouts
      const deadline = st.hooks?.startContainer ? Infinity : Date.now() + 10_000;
      // the init needs ~0.1 ms to be scheduled and write: poll finely first
      // (a flat 1 ms sleep cost every start most of a millisecond)
      let nap = 0.05;
      let got = 0;
      for (;;) {
        let n = -1;
        try {
          n = readSync(fd, b, got, b.length - got, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        }
        if (n > 0) got += n;
        if (got && b[0] === 0x30 /* "0": the process is starting */) break;
        // "E<text>": a startContainer hook failed; the init exits after it (EOF)
        if (got && (n === 0 || got === b.length)) throw new TsrunError(b.subarray(1, got).toString());
        if (!got && !initAlive(st)) {
          // a process that started and already ended wrote its "0" first (seen in the VM: 3 runs in 25)
          if (drained(fd, b)) break;
          throw new TsrunError('cannot start a container that has stopped');
        }
        if (Date.now() > deadline) throw new TsrunError('timed out waiting for the container init to start');
        if (n <= 0) sleep(nap);
        nap = Math.min(nap * 2, 2);
      }
    } finally {
      closeSync(fd);
    }
    try {
      // unlinkSync: Node 20's rmSync loads and runs its JS rimraf even for one file
      unlinkSync(fifo);
    } catch {
      /* already gone */
    }
    const s = JSON.stringify(ociState(ctx.store, st, 'running'));
    try {
      runHooks('poststart', st.hooks?.poststart, s, hookOptions(ctx));
    } catch (e) {
      // spec 1.3: an error, the container stopped; delete destroys it and runs poststop
      stopInit(st);
      throw e;
    }
  } finally {
    unlock();
  }
}

/** One last read of the exec fifo: true when the init's "0" is there. */
function drained(fd: number, b: Buffer): boolean {
  try {
    return readSync(fd, b, 0, 1, null) === 1 && b[0] === 0x30;
  } catch {
    return false;
  }
}

/** Signal the init only while it is the process recorded (pid and start time): a pid is reused. */
export function signalInit(st: StoredState, sig: number): void {
  if (!initAlive(st)) return;
  try {
    process.kill(st.pid, sig);
  } catch {
    /* gone */
  }
}

/** Kill the init and wait until it is gone (its cgroup stays for delete); false if it outlived the wait. */
function stopInit(st: StoredState): boolean {
  signalInit(st, 9);
  return waitGone(st, 10_000);
}

export function state(ctx: Context, id: string): OciState {
  const st = ctx.store.load(id);
  return ociState(ctx.store, st);
}

export function kill(ctx: Context, id: string, signal: string | undefined, all: boolean): void {
  const sig = parseSignal(signal);
  const st = ctx.store.load(id);
  const status = deriveStatus(ctx.store, st);
  if (status === 'stopped') {
    if (!all) throw new TsrunError('container not running');
  }
  if (all) {
    ContainerCgroups.of(st).signalAll(sig);
    return;
  }
  try {
    process.kill(st.pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new TsrunError('container not running');
    throw new TsrunError(`kill ${st.pid}`, { errno: (e as NodeJS.ErrnoException).code });
  }
}

/** Wait until the init (and its cgroup) are gone; zombies count as gone. */
function waitGone(st: StoredState, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ps = procStat(st.pid);
    const initGone = !ps || ps.startTime !== st.pidStart || ps.state === 'Z' || ps.state === 'X';
    if (initGone) return true;
    sleep(2);
  }
  return false;
}

export function destroy(ctx: Context, st: StoredState): void {
  // whatever is left in the cgroup goes with the container
  const failed = ContainerCgroups.of(st).destroy();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (st.rdtDir) (require('../intelrdt') as typeof import('../intelrdt')).removeRdt(st.rdtDir);
  for (const f of failed) ctx.log.warn(`remove cgroup ${f}: still busy`);
  runPoststop(ctx, st);
  ctx.store.remove(st.id);
}

/** Hooks in the runtime's namespaces, run through the stage (which binds the native calls only then). */
function hookOptions(ctx: Context): { stageExe: () => string } {
  return { stageExe: () => ctx.sys().stageExe() };
}

/** poststop hooks: each failure a warning, the rest still run (spec step 13). */
export function runPoststop(ctx: Context, st: StoredState): void {
  const s = JSON.stringify(ociState(ctx.store, st, 'stopped'));
  for (const [i, h] of (st.hooks?.poststop ?? []).entries()) {
    try {
      runHooks('poststop', [h], s, hookOptions(ctx));
    } catch (e) {
      ctx.log.warn(`${(e as Error).message.replace('#0', `#${i}`)}`);
    }
  }
}

export function del(ctx: Context, id: string, force: boolean): void {
  let st: StoredState;
  let unlock: () => void;
  try {
    ctx.store.load(id);
    unlock = ctx.store.lock(id);
    // read again under the lock: a concurrent delete may have finished
    st = ctx.store.load(id);
  } catch (e) {
    if ((e as Error).message === 'container does not exist') {
      // with --force a missing container is not an error (runc), and a state
      // dir without state.json (a create killed at its first step) goes
      if (force) {
        removeBare(ctx, id);
        return;
      }
    }
    throw e;
  }
  try {
    const status = deriveStatus(ctx.store, st);
    if (status === 'running' || status === 'paused') {
      if (!force) throw new TsrunError(`cannot delete container ${id} that is not stopped: ${status}`);
    }
    if (status !== 'stopped') {
      if (status === 'paused') ContainerCgroups.of(st).thawQuietly();
      if (!stopInit(st)) throw new TsrunError(`container init ${st.pid} did not die after SIGKILL`);
    }
    destroy(ctx, st);
  } finally {
    unlock();
  }
}

/** A state dir with no state.json, once no live create holds its lock. */
function removeBare(ctx: Context, id: string): void {
  // a delete killed after it renamed the state dir away left it under another name
  ctx.store.sweepRemoved(id);
  if (!existsSync(ctx.store.dir(id))) return;
  let unlock: () => void;
  try {
    unlock = ctx.store.lock(id, 2000);
  } catch {
    return; /* gone meanwhile, or a create that is alive */
  }
  try {
    if (!existsSync(join(ctx.store.dir(id), 'state.json'))) ctx.store.remove(id);
  } finally {
    unlock();
  }
}

export function list(ctx: Context): OciState[] {
  const out: OciState[] = [];
  for (const id of ctx.store.list()) {
    try {
      out.push(state(ctx, id));
    } catch {
      /* removed while we looked */
    }
  }
  return out;
}

/** pause: freeze every process of the container (v1 freezer, v2 cgroup.freeze). */
export function pause(ctx: Context, id: string): void {
  const st = ctx.store.load(id);
  const unlock = ctx.store.lock(id);
  try {
    const status = deriveStatus(ctx.store, st);
    if (status !== 'running' && status !== 'created') throw new TsrunError(`container not running`);
    ContainerCgroups.of(st).setFrozen(true);
  } finally {
    unlock();
  }
}

/** resume: thaw a paused container. */
export function resume(ctx: Context, id: string): void {
  const st = ctx.store.load(id);
  const unlock = ctx.store.lock(id);
  try {
    if (deriveStatus(ctx.store, st) !== 'paused') throw new TsrunError('container not paused');
    ContainerCgroups.of(st).setFrozen(false);
  } finally {
    unlock();
  }
}

/** ps: the host pids of the container's processes. */
export function ps(ctx: Context, id: string): number[] {
  const st = ctx.store.load(id);
  return ContainerCgroups.of(st).pids();
}
