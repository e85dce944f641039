// One error type for the whole runtime: a message, an optional errno name and
// a cause chain. Printed as one line: "tsrun: <what>: <why>".
let errnoNames: Record<number, string> | undefined;

/** errno number -> its name ("ENOENT"); "errno N" when unknown. */
export function errnoName(n: number): string {
  if (!errnoNames) {
    errnoNames = {};
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { constants } = require('node:os') as typeof import('node:os');
    for (const [name, num] of Object.entries(constants.errno)) {
      if (!(num in errnoNames)) errnoNames[num] = name;
    }
  }
  return errnoNames[Math.abs(n)] ?? `errno ${Math.abs(n)}`;
}

export class TsrunError extends Error {
  readonly errno?: string;
  /** exit status the CLI should use (default 1) */
  readonly status: number;
  constructor(message: string, opts: { errno?: string | number; cause?: unknown; status?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TsrunError';
    if (typeof opts.errno === 'number') this.errno = errnoName(opts.errno);
    else if (opts.errno) this.errno = opts.errno;
    this.status = opts.status ?? 1;
  }
}

/** Node's fs errors carry .code = "ENOENT"; keep the name, drop Node's wording. */
export function sysError(what: string, e: unknown): TsrunError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && /^E[A-Z0-9]+$/.test(code)) return new TsrunError(what, { errno: code });
  if (e instanceof TsrunError) return new TsrunError(`${what}: ${e.message}`, { errno: e.errno });
  return new TsrunError(`${what}: ${(e as Error)?.message ?? String(e)}`);
}

/** The one line shown to the user: message, then errno name, then causes. */
export function formatError(e: unknown): string {
  if (e instanceof TsrunError || (e && (e as { name?: string }).name === 'TsrunError')) {
    const te = e as TsrunError;
    let s = te.message;
    if (te.errno) s += `: ${te.errno}`;
    let c = te.cause;
    while (c) {
      if (c instanceof Error) {
        s += `: ${c.message}`;
        c = (c as Error & { cause?: unknown }).cause;
      } else {
        s += `: ${String(c)}`;
        break;
      }
    }
    return s;
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && (e as NodeJS.ErrnoException).syscall) {
    const ne = e as NodeJS.ErrnoException;
    return `${ne.syscall}${ne.path ? ' ' + ne.path : ''}: ${code}`;
  }
  return (e as Error)?.message ?? String(e);
}
