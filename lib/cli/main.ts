// The entry of every tsrun call. Parses with the fast parser (no yargs on the
// hot path), runs one use case, prints, sets the exit code. A command line the
// fast parser refuses goes to the yargs CLI for usage and error text.
import { DEFAULT_ROOT, fastParse, rejectReason, verbIndex, type Parsed } from './commands';
import { formatError } from '../errors';
import { Logger, writeStdout, type LogFormat } from '../log';
import { StateStore } from '../state';
import type { Context } from '../runtime/context';
import { TsrunError } from '../errors';

export const VERSION = '0.1.0';
import { SPEC_VERSION } from '../spec/version';

export { SPEC_VERSION };

function versionText(): string {
  const engine = process.versions.bun ? `bun: ${process.versions.bun}` : `node: ${process.version}`;
  return `tsrun version ${VERSION}\nspec: ${SPEC_VERSION}\n${engine}\n`;
}

function table(rows: string[][]): string {
  // runc: text/tabwriter with minwidth 12, padding 1
  const widths = rows[0]!.map((_, i) => Math.max(12, ...rows.map((r) => r[i]!.length + 1)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('')).join('\n') + '\n';
}

// Modules reached only through import() are evaluated (and, in the compiled
// executable, read: each is its own chunk) only when imported: create/run
// (validators, plan, koffi) and the admin verbs cost state/start/kill/delete
// nothing (test/integration/lazy-load).
function heavy(): Promise<typeof import('./heavy')> {
  return import('./heavy');
}

function admin(): Promise<typeof import('./admin')> {
  return import('./admin');
}

type Flags = Parsed['flags'];

/** runc's default root for a user who is not root: $XDG_RUNTIME_DIR/tsrun (an explicit --root wins). */
function stateRoot(root: string, argv: string[]): string {
  const given = argv.some((a) => a === '--root' || a.startsWith('--root='));
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (given || root !== DEFAULT_ROOT || process.geteuid?.() === 0 || !xdg) return root;
  return `${xdg}/tsrun`;
}

function createOptions(id: string, f: Flags): import('../runtime/create').CreateOptions {
  return {
    id, bundle: f.bundle as string, pidFile: f.pidFile as string | undefined,
    consoleSocket: f.consoleSocket as string | undefined, noPivot: !!f.noPivot,
    noNewKeyring: !!f.noNewKeyring, preserveFds: f.preserveFds as number, pidfdSocket: f.pidfdSocket as string | undefined,
  };
}

function execOptions(p: Parsed): import('../runtime/exec').ExecOptions {
  const f = p.flags;
  return {
    id: p.args[0]!, args: p.args.slice(1), process: f.process as string | undefined, env: f.env as string[] | undefined,
    cwd: f.cwd as string | undefined, user: f.user as string | undefined,
    additionalGids: f.additionalGids as string[] | undefined, cap: f.cap as string[] | undefined,
    noNewPrivs: !!f.noNewPrivs, tty: !!f.tty, consoleSocket: f.consoleSocket as string | undefined,
    detach: !!f.detach, pidFile: f.pidFile as string | undefined, preserveFds: f.preserveFds as number,
    ignorePaused: !!f.ignorePaused, cgroup: f.cgroup as string[] | undefined,
    apparmor: f.apparmor as string | undefined, processLabel: f.processLabel as string | undefined,
    pidfdSocket: f.pidfdSocket as string | undefined,
  };
}

/** runc's --interval: 5s, 500ms, 1m, or plain seconds */
function intervalSeconds(v: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(v));
  if (!m) throw new TsrunError(`--interval: invalid duration ${JSON.stringify(v)}`);
  return Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1);
}

async function listVerb(ctx: Context, f: Flags): Promise<void> {
  const { list } = await import('../runtime/lifecycle');
  const all = list(ctx);
  if (f.quiet) {
    writeStdout(all.map((s) => s.id + '\n').join(''));
  } else if (f.format === 'json') {
    writeStdout(JSON.stringify(all.map((s) => ({ ...s, annotations: s.annotations ?? {} }))) + '\n');
  } else if (f.format === 'table') {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
    for (const s of all) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner]);
    writeStdout(table(rows));
  } else {
    throw new TsrunError(`invalid format option ${JSON.stringify(f.format)}`);
  }
}

/** runc's ps: JSON host pids, or ps(1) with the given options (default -ef), rows of our pids only */
async function psVerb(ctx: Context, id: string, psArgs: string[], f: Flags): Promise<void> {
  const { ps } = await import('../runtime/lifecycle');
  const pids = ps(ctx, id);
  if (f.format === 'json') {
    writeStdout(JSON.stringify(pids) + '\n');
    return;
  }
  if (f.format !== 'table') throw new TsrunError(`invalid format option ${JSON.stringify(f.format)}`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const opts = psArgs.length ? psArgs : ['-ef'];
  const r = spawnSync('ps', opts, { encoding: 'utf8' });
  if (r.status !== 0) throw new TsrunError(`ps ${opts.join(' ')}: ${r.stderr.trim() || r.error?.message}`);
  const lines = r.stdout.split('\n');
  const pidCol = lines[0]!.trim().split(/\s+/).indexOf('PID');
  if (pidCol < 0) throw new TsrunError(`ps ${opts.join(' ')}: no PID column in its output`);
  const set = new Set(pids.map(String));
  writeStdout([lines[0], ...lines.slice(1).filter((l) => set.has(l.trim().split(/\s+/)[pidCol]!))].join('\n') + '\n');
}

async function dispatch(p: Parsed, ctx: Context): Promise<number> {
  const f = p.flags;
  const id = p.args[0]!;
  switch (p.verb) {
    case 'create': {
      const { create } = await heavy();
      create(ctx, createOptions(id, f));
      return 0;
    }
    case 'run': {
      const { run } = await heavy();
      return run(ctx, { ...createOptions(id, f), detach: !!f.detach, keep: !!f.keep, noSubreaper: !!f.noSubreaper });
    }
    case 'exec': {
      const { exec } = await import('../runtime/exec');
      return exec(ctx, execOptions(p));
    }
    case 'start': {
      const { start } = await import('../runtime/lifecycle');
      start(ctx, id);
      return 0;
    }
    case 'state': {
      const { state } = await import('../runtime/lifecycle');
      writeStdout(JSON.stringify(state(ctx, id), null, '  ') + '\n');
      return 0;
    }
    case 'kill': {
      const { kill } = await import('../runtime/lifecycle');
      kill(ctx, id, p.args[1], !!f.all);
      return 0;
    }
    case 'delete': {
      const { del } = await import('../runtime/lifecycle');
      del(ctx, id, !!f.force);
      return 0;
    }
    case 'list':
      await listVerb(ctx, f);
      return 0;
    case 'pause':
    case 'resume': {
      const lc = await import('../runtime/lifecycle');
      (p.verb === 'pause' ? lc.pause : lc.resume)(ctx, id);
      return 0;
    }
    case 'ps':
      await psVerb(ctx, id, p.args.slice(1), f);
      return 0;
    case 'update': {
      const { update } = await admin();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const stdin = () => (require('node:fs') as typeof import('node:fs')).readFileSync(0, 'utf8');
      update(ctx, id, f as import('../runtime/update').UpdateFlags, stdin);
      return 0;
    }
    case 'events': {
      const { events } = await admin();
      events(ctx, id, !!f.stats, intervalSeconds(f.interval));
      return 0;
    }
    case 'features': {
      const { features } = await admin();
      writeStdout(JSON.stringify(features(VERSION), null, '    ') + '\n');
      return 0;
    }
    case 'spec': {
      const { writeSpec } = await admin();
      writeSpec(f.bundle as string | undefined, !!f.rootless);
      return 0;
    }
  }
  throw new TsrunError(`unknown command ${p.verb}`);
}

export async function main(argv: string[]): Promise<number> {
  const p = fastParse(argv);
  if (!p) {
    const verbAt = verbIndex(argv);
    const beforeVerb = verbAt < 0 ? argv : argv.slice(0, verbAt);
    if (beforeVerb.includes('--version') || beforeVerb.includes('-v')) {
      writeStdout(versionText());
      return 0;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const y = await import('./yargs');
    const code = y.runYargs(argv, versionText(), rejectReason);
    reportModules(new Logger(undefined, 'text', beforeVerb.includes('--debug')));
    return code;
  }
  const g = p.globals;
  const format = g.logFormat as string;
  if (format !== 'text' && format !== 'json') {
    new Logger(undefined).error(`invalid log-format: ${format}`);
    return 1;
  }
  const log = new Logger(g.log as string | undefined, format as LogFormat, !!g.debug);
  const rootless = g.rootless as string;
  if (rootless !== 'auto' && rootless !== 'false' && rootless !== 'true') {
    log.error(`invalid --rootless value ${JSON.stringify(rootless)} (true, false or auto)`);
    return 1;
  }
  const ctx: Context = {
    store: new StateStore(stateRoot(g.root as string, argv)),
    log,
    systemdCgroup: !!g.systemdCgroup,
    rootless: g.rootless as string,
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sys: () => (require('../sys') as typeof import('../sys')).loadSys(),
  };
  try {
    return await dispatch(p, ctx);
  } catch (e) {
    log.error(formatError(e));
    if (log.debugEnabled && e instanceof Error && e.stack) log.debug(e.stack);
    // runc: exec that fails before its process runs exits 255
    return p.verb === 'exec' ? 255 : ((e as TsrunError).status ?? 1);
  } finally {
    reportModules(log);
  }
}

/** --debug: which modules ran (the bundles record each: lib/build/plugins.mjs). */
function reportModules(log: Logger): void {
  const evaluated = (globalThis as { __tsrunEval?: string[] }).__tsrunEval;
  if (log.debugEnabled && evaluated) log.debug(`modules evaluated: ${evaluated.join(' ')}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    // not process.exit(): Bun's exit() path costs ~2 ms of system time more
    // than letting the loop end (hyperfine, state, interleaved)
    process.exitCode = code;
  },
  (e) => {
    new Logger(undefined).error(formatError(e));
    process.exitCode = 1;
  },
);
