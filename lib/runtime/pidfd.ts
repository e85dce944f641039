// --pidfd-socket: the container process's pidfd handed to the caller.
import type { Sys } from '../sys';

/**
 * --pidfd-socket (runc 1.2): a pidfd of the container's process goes to the
 * socket (SCM_RIGHTS), for a caller that signals and waits on it without
 * pid races (containerd). Sent while the process waits for GO: it exists.
 */
export function sendPidfd(sys: Sys, socket: string | undefined, pid: number): void {
  if (!socket) return;
  const fd = sys.pidfdOpen(pid);
  try {
    sys.sendFdTo(socket, fd, Buffer.from('pidfd'), `--pidfd-socket ${socket}: send the pidfd of ${pid}`);
  } finally {
    sys.close(fd);
  }
}
