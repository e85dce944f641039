// An explicit logger: errors go to stderr as one line, and with --log to a
// file as text or logrus-style JSON ({"level","msg","time"}), as runc does.
import { appendFileSync, writeSync } from 'node:fs';

export type LogFormat = 'text' | 'json';
export type Level = 'debug' | 'info' | 'warning' | 'error';

export class Logger {
  constructor(
    readonly file: string | undefined,
    readonly format: LogFormat = 'text',
    readonly debugEnabled = false,
  ) {}

  private line(level: Level, msg: string): string {
    const time = new Date().toISOString();
    if (this.format === 'json') return JSON.stringify({ level, msg, time }) + '\n';
    return `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
  }

  private toFile(level: Level, msg: string): void {
    if (!this.file) return;
    try {
      appendFileSync(this.file, this.line(level, msg));
    } catch {
      /* a log file we cannot write must not hide the real error */
    }
  }

  debug(msg: string): void {
    if (!this.debugEnabled) return;
    // runc's logrus text (time=... level=debug msg=...), which scripts match on
    if (this.file) this.toFile('debug', msg);
    else writeStderr(this.line('debug', msg));
  }

  warn(msg: string): void {
    // podman parses a --log file as one JSON object: warnings only go there
    // when there is no error to report, so keep them on stderr for json logs.
    if (this.file && this.format === 'text') this.toFile('warning', msg);
    writeStderr(`tsrun: warning: ${msg}\n`);
  }

  /** The single error line of a failed call. */
  error(msg: string): void {
    this.toFile('error', msg);
    writeStderr(`tsrun: ${msg}\n`);
  }
}

// Never touch process.stdout/stderr: libuv may switch a shared pipe to
// O_NONBLOCK, and that pipe is the container's stdio too.
export function writeStderr(s: string): void {
  try {
    writeSync(2, s);
  } catch {
    /* nothing left to tell */
  }
}

export function writeStdout(s: string): void {
  let buf = Buffer.from(s);
  while (buf.length) {
    try {
      const n = writeSync(1, buf);
      buf = buf.subarray(n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw e;
    }
  }
}
