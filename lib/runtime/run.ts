// run = create + start (+ wait, forward signals, delete unless --keep).
import { TsrunError } from '../errors';
import { create, type CreateOptions } from './create';
import { destroy, signalInit, start } from './lifecycle';
import type { Context } from './context';
import { exitCode, forwardSignals } from './signals';
import { startRelay, type Relay } from './tty';

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  keep?: boolean;
  noSubreaper?: boolean;
}


/** Returns the exit status for tsrun: the container's, 128+N for a signal. */
export async function run(ctx: Context, o: RunOptions): Promise<number> {
  if (o.detach) {
    create(ctx, o);
    try {
      start(ctx, o.id);
    } catch (e) {
      cleanup(ctx, o.id, true);
      throw e;
    }
    return 0;
  }
  // In the foreground we wait for init: become the subreaper so that it is
  // re-parented to us when the stage that forked it exits.
  const sys = ctx.sys();
  if (!o.noSubreaper) sys.setSubreaper();
  const { state, masterFd } = create(ctx, { ...o, terminalRelay: true });
  const pid = state.pid;
  const stopForwarding = forwardSignals(pid, masterFd >= 0);
  let ws: number;
  let relay: Relay | undefined;
  try {
    const waiting = sys.waitpidAsync(pid);
    try {
      if (masterFd >= 0) relay = startRelay(sys, masterFd, sys.pidfdOpen(pid));
      start(ctx, o.id);
    } catch (e) {
      try {
        process.kill(pid, 9);
      } catch {
        /* gone */
      }
      await waiting;
      await relay?.done;
      // a failed start (a hook) leaves a stopped container: run removes it unless --keep
      if (!o.keep) cleanup(ctx, o.id, false);
      throw e;
    }
    ws = await waiting;
    await relay?.done;
  } finally {
    stopForwarding();
  }
  if (!o.keep) cleanup(ctx, o.id, false);
  if (ws < 0) throw new TsrunError(`wait for container init ${pid} failed`);
  return exitCode(ws);
}

/**
 * Remove the container. KILL_INIT: the init may still run (we never reaped
 * it); signalled only while it is the recorded process (its start time).
 * Once reaped its pid may already be someone else's: only the cgroup's
 * processes are killed then (destroy).
 */
function cleanup(ctx: Context, id: string, killInit: boolean): void {
  try {
    const st = ctx.store.load(id);
    if (killInit) signalInit(st, 9);
    destroy(ctx, st);
  } catch (e) {
    ctx.log.warn(`delete ${id}: ${(e as Error).message}`);
  }
}
