// The stage supervisor on a fake Sys: frames in their phase order, anything
// else an error, and rollback kills and reaps what exists. No root, no kernel.
import t from 'tap';
import { encodeFrame, M } from '../../lib/protocol';
import { Supervisor, type StageHandlers } from '../../lib/runtime/supervisor';
import type { Sys } from '../../lib/sys';

type Step = { frame: Buffer; fd?: number } | { n: number };

/** A Sys whose recv replays STEPS; records what the supervisor did. */
function fakeSys(steps: Step[]) {
  const log: string[] = [];
  const sys = {
    recv(_sock: number, pidfd: number, buf: Buffer) {
      const s = steps.shift();
      if (!s) throw new Error('recv past the script');
      log.push(`recv watching ${pidfd}`);
      if ('n' in s) return { n: s.n, fd: -1 };
      s.frame.copy(buf);
      return { n: s.frame.length, fd: s.fd ?? -1 };
    },
    send(_sock: number, b: Buffer) { log.push(`send ${b.readUInt32LE(0)}`); },
    waitpid(pid: number) { log.push(`waitpid ${pid}`); return 0; },
    pidfdOpen(pid: number) { log.push(`pidfdOpen ${pid}`); return 50; },
    pidfdSignal(fd: number, sig: number) { log.push(`signal ${fd} ${sig}`); return 0; },
    pidfdWait(fd: number) { log.push(`pidfdWait ${fd}`); return true; },
    close(fd: number) { log.push(`close ${fd}`); },
  } as unknown as Sys;
  return { sys, log };
}

const pidFrame = (pid: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(pid); return encodeFrame(M.PID, b); };
const handlers = (extra: Partial<StageHandlers> = {}): StageHandlers => ({ prefix: '', debug: () => {}, warn: () => {}, ...extra });
const spawned = { sock: 10, pidfd: 11, pid: 1000 };

t.test('PID, HOOKS, READY: the stage reaped at PID, the init watched after, HOOKS_DONE sent', async (t) => {
  const { sys, log } = fakeSys([{ frame: pidFrame(1234) }, { frame: encodeFrame(M.HOOKS) }, { frame: encodeFrame(M.READY) }]);
  const seen: string[] = [];
  const sv = new Supervisor(sys, spawned, handlers({ pid: (p) => seen.push(`pid ${p}`), hooks: () => seen.push('hooks') }));
  sv.untilReady();
  t.equal(sv.pid, 1234);
  t.same(seen, ['pid 1234', 'hooks']);
  t.same(log, ['recv watching 11', 'pidfdOpen 1234', 'waitpid 1000', 'close 11', 'recv watching 50', `send ${M.HOOKS_DONE}`, 'recv watching 50']);
  sv.go();
  sv.close();
  t.same(log.slice(-3), [`send ${M.GO}`, 'close 10', 'close 50']);
});

t.test('frames out of order are errors', async (t) => {
  const cases: [string, Step[], Partial<StageHandlers>, RegExp][] = [
    ['HOOKS before PID', [{ frame: encodeFrame(M.HOOKS) }], { hooks: () => {} }, /unexpected message 2 .* in phase Spawned/],
    ['READY before PID', [{ frame: encodeFrame(M.READY) }], {}, /unexpected message 4 .* in phase Spawned/],
    ['HOOKS where none were asked for (exec)', [{ frame: pidFrame(5) }, { frame: encodeFrame(M.HOOKS) }], {}, /unexpected message 2 .* in phase Init/],
    ['PID twice', [{ frame: pidFrame(5) }, { frame: pidFrame(6) }], {}, /unexpected message 1 .* in phase Init/],
    ['HOOKS twice', [{ frame: pidFrame(5) }, { frame: encodeFrame(M.HOOKS) }, { frame: encodeFrame(M.HOOKS) }], { hooks: () => {} }, /in phase HooksDone/],
    ['an unknown type', [{ frame: encodeFrame(99) }], {}, /unexpected message 99/],
    ['a PTY frame without its fd', [{ frame: pidFrame(5) }, { frame: encodeFrame(M.PTY) }], {}, /terminal: no pty master came with the message/],
  ];
  for (const [what, steps, h, re] of cases) {
    const { sys } = fakeSys(steps);
    t.throws(() => new Supervisor(sys, spawned, handlers(h)).untilReady(), re, what);
  }
});

t.test('ERROR carries its errno; silence and a dead stage are named; the prefix leads', async (t) => {
  const err = encodeFrame(M.ERROR, Buffer.from('mounts[0]: mount proc'));
  err.writeInt32LE(16, 4);
  let f = fakeSys([{ frame: err }]);
  t.throws(() => new Supervisor(f.sys, spawned, handlers()).untilReady(), { message: 'mounts[0]: mount proc', errno: 'EBUSY' });
  f = fakeSys([{ n: -10 }]);
  t.throws(() => new Supervisor(f.sys, spawned, handlers({ prefix: 'exec: ' })).untilReady(), /^exec: container init setup exited unexpectedly \(exit status 0\)$/);
  t.ok(f.log.includes('waitpid 1000'), 'the dead stage is reaped');
  f = fakeSys([{ frame: pidFrame(7) }, { n: -10 }]);
  t.throws(() => new Supervisor(f.sys, spawned, handlers()).untilReady(), /container process exited unexpectedly during setup/);
  f = fakeSys([{ n: -110 }]);
  t.throws(() => new Supervisor(f.sys, spawned, handlers()).untilReady(), /did not answer for \d+ s during setup/);
});

t.test('abort: the init killed through its pidfd and waited for, the stage killed and reaped, fds closed', async (t) => {
  let f = fakeSys([{ frame: pidFrame(77) }, { frame: encodeFrame(M.PTY), fd: 33 }, { frame: encodeFrame(M.READY) }]);
  let sv = new Supervisor(f.sys, spawned, handlers());
  sv.untilReady();
  t.equal(sv.masterFd, 33);
  f.log.length = 0;
  sv.abort();
  t.same(f.log, ['close 33', 'signal 50 9', 'pidfdWait 50', 'close 10', 'close 50']);
  // before PID: only the stage exists
  f = fakeSys([{ frame: encodeFrame(M.DEBUG, Buffer.from('x')) }, { frame: encodeFrame(M.READY) }]);
  sv = new Supervisor(f.sys, spawned, handlers());
  t.throws(() => sv.untilReady());
  f.log.length = 0;
  sv.abort();
  t.same(f.log, ['signal 11 9', 'waitpid 1000', 'close 11', 'close 10']);
});

t.test('fds sent before the init exists, or with no one to take them, are closed', async (t) => {
  const { sys, log } = fakeSys([{ frame: pidFrame(8) }, { frame: encodeFrame(M.SECCOMP), fd: 44 }, { frame: encodeFrame(M.READY) }]);
  new Supervisor(sys, spawned, handlers()).untilReady();
  t.ok(log.includes('close 44'), 'a listener fd without a listener is closed');
});
