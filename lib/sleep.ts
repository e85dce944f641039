// A synchronous sleep: every verb is one short synchronous run, and an
// await would hand the wait to the event loop for nothing.
const sleepBuf = new Int32Array(new SharedArrayBuffer(4));

export function sleep(ms: number): void {
  Atomics.wait(sleepBuf, 0, 0, ms);
}
