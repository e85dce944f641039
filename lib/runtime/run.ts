// run = create + start (+ wait, forward signals, delete unless --keep).
import { TsrunError } from '../errors';
import { create, type CreateOptions } from './create';
import { destroy, start } from './lifecycle';

const SIGKILL = 9;
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
    const { sys, initPidfd } = create(ctx, { ...o, keepInitPidfd: true });
    try {
      start(ctx, o.id);
    } catch (e) {
      sys.pidfdSignal(initPidfd, SIGKILL);
      cleanup(ctx, o.id);
      throw e;
    } finally {
      sys.close(initPidfd);
    }
    return 0;
  }
  // In the foreground we wait for init: become the subreaper so that it is
  // re-parented to us when the stage that forked it exits.
  const sys = ctx.sys();
  if (!o.noSubreaper) sys.setSubreaper();
  const { state, masterFd, initPidfd } = create(ctx, { ...o, terminalRelay: true, keepInitPidfd: true });
  const pid = state.pid;
  // through the pidfd: the init's pid is free for reuse once it is reaped
  const stopForwarding = forwardSignals(pid, masterFd >= 0, (sig) => sys.pidfdSignal(initPidfd, sig));
  let ws: number;
  let relay: Relay | undefined;
  try {
    const waiting = sys.waitpidAsync(pid);
    try {
      if (masterFd >= 0) relay = startRelay(sys, masterFd, sys.pidfdOpen(pid));
      start(ctx, o.id);
    } catch (e) {
      sys.pidfdSignal(initPidfd, SIGKILL);
      await waiting;
      await relay?.done;
      // a failed start (a hook) leaves a stopped container: run removes it unless --keep
      if (!o.keep) cleanup(ctx, o.id);
      throw e;
    }
    ws = await waiting;
    await relay?.done;
  } finally {
    stopForwarding();
    sys.close(initPidfd);
  }
  if (!o.keep) cleanup(ctx, o.id);
  if (ws < 0) throw new TsrunError(`wait for container init ${pid} failed`);
  return exitCode(ws);
}

/** Remove the container: what is left in its cgroups dies with it (never by a pid that may be reused). */
function cleanup(ctx: Context, id: string): void {
  try {
    destroy(ctx, ctx.store.load(id));
  } catch (e) {
    ctx.log.warn(`delete ${id}: ${(e as Error).message}`);
  }
}
