// The CLI as data: every verb, flag and positional, with runc's names.
// Two readers: the fast parser below (the hot path: no yargs loaded) and
// lib/cli/yargs.ts, which builds the yargs CLI from the same table for help,
// usage, completion and the error message of a command line the fast parser
// refuses.

export type FlagType = 'string' | 'boolean' | 'number' | 'array';

export interface FlagDef {
  name: string;
  alias?: string[];
  type: FlagType;
  desc: string;
  default?: string | number | boolean | string[];
  hidden?: boolean;
}

export interface PositionalDef {
  name: string;
  desc: string;
  required: boolean;
  /** takes the rest of the command line (exec's command) */
  rest?: boolean;
}

export interface CommandDef {
  name: string;
  desc: string;
  positionals: PositionalDef[];
  flags: FlagDef[];
  /** flags end at the first positional (runc's urfave/cli behaviour for exec) */
  flagsStopAtPositional?: boolean;
}

export const DEFAULT_ROOT = '/run/tsrun';

export const globalFlags: FlagDef[] = [
  { name: 'root', type: 'string', default: DEFAULT_ROOT, desc: 'root directory for storage of container state (this should be located in tmpfs)' },
  { name: 'log', type: 'string', desc: 'set the log file to write tsrun logs to (default is stderr)' },
  { name: 'log-format', type: 'string', default: 'text', desc: 'set the log format (text or json)' },
  { name: 'debug', type: 'boolean', desc: 'enable debug logging' },
  { name: 'systemd-cgroup', type: 'boolean', desc: 'enable systemd cgroup support: cgroupsPath is slice:prefix:name' },
  { name: 'rootless', type: 'string', default: 'auto', desc: "ignore cgroup permission errors ('true', 'false', or 'auto')" },
  { name: 'criu', type: 'string', hidden: true, desc: '(ignored: checkpoint/restore is not supported)' },
];

const id: PositionalDef = { name: 'container-id', desc: 'the container id', required: true };
const bundle: FlagDef = { name: 'bundle', alias: ['b'], type: 'string', default: '.', desc: 'path to the root of the bundle directory' };
const consoleSocket: FlagDef = { name: 'console-socket', type: 'string', desc: 'path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console\'s pseudoterminal' };
const pidfdSocket: FlagDef = { name: 'pidfd-socket', type: 'string', desc: 'path to an AF_UNIX socket which will receive a file descriptor referencing the container process (a pidfd)' };
const pidFile: FlagDef = { name: 'pid-file', type: 'string', desc: 'specify the file to write the process id to' };
const noPivot: FlagDef = { name: 'no-pivot', type: 'boolean', desc: 'do not use pivot root to jail process inside rootfs (for a ramdisk rootfs)' };
const noNewKeyring: FlagDef = { name: 'no-new-keyring', type: 'boolean', desc: 'do not create a new session keyring for the container' };
const preserveFds: FlagDef = { name: 'preserve-fds', type: 'number', default: 0, desc: 'pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)' };

export const commands: CommandDef[] = [
  {
    name: 'create',
    desc: 'create a container',
    positionals: [id],
    flags: [bundle, consoleSocket, pidfdSocket, pidFile, noPivot, noNewKeyring, preserveFds],
  },
  { name: 'start', desc: 'executes the user defined process in a created container', positionals: [id], flags: [] },
  {
    name: 'run',
    desc: 'create and run a container',
    positionals: [id],
    flags: [
      bundle, consoleSocket, pidfdSocket,
      { name: 'detach', alias: ['d'], type: 'boolean', desc: 'detach from the container\'s process' },
      { name: 'keep', type: 'boolean', desc: 'do not delete the container after it exits' },
      pidFile, noPivot, noNewKeyring, preserveFds,
      { name: 'no-subreaper', type: 'boolean', desc: 'disable the use of the subreaper used to reap reparented processes' },
    ],
  },
  { name: 'state', desc: 'output the state of a container', positionals: [id], flags: [] },
  {
    name: 'kill',
    desc: 'kill sends the specified signal (default: SIGTERM) to the container\'s init process',
    positionals: [id, { name: 'signal', desc: 'signal name or number', required: false }],
    flags: [{ name: 'all', alias: ['a'], type: 'boolean', desc: 'send the specified signal to all processes inside the container' }],
  },
  {
    name: 'delete',
    desc: 'delete any resources held by the container often used with detached container',
    positionals: [id],
    flags: [{ name: 'force', alias: ['f'], type: 'boolean', desc: 'forcibly deletes the container if it is still running (uses SIGKILL)' }],
  },
  {
    name: 'list',
    desc: 'lists containers started by tsrun with the given root',
    positionals: [],
    flags: [
      { name: 'format', alias: ['f'], type: 'string', default: 'table', desc: 'select one of: table or json' },
      { name: 'quiet', alias: ['q'], type: 'boolean', desc: 'display only container IDs' },
    ],
  },
  {
    name: 'exec',
    desc: 'execute new process inside the container',
    positionals: [id, { name: 'command', desc: 'the command and its arguments (or --process)', required: false, rest: true }],
    flagsStopAtPositional: true,
    flags: [
      { name: 'process', alias: ['p'], type: 'string', desc: 'path to the process.json' },
      { name: 'env', alias: ['e'], type: 'array', desc: 'set environment variables (KEY=VALUE)' },
      { name: 'cwd', type: 'string', desc: 'current working directory in the container' },
      { name: 'user', alias: ['u'], type: 'string', desc: 'UID (format: <uid>[:<gid>])' },
      { name: 'additional-gids', alias: ['g'], type: 'array', desc: 'additional gids' },
      { name: 'cap', alias: ['c'], type: 'array', desc: 'add a capability to the bounding set for the process' },
      { name: 'no-new-privs', type: 'boolean', desc: 'set the no new privileges value for the process' },
      { name: 'tty', alias: ['t'], type: 'boolean', desc: 'allocate a pseudo-TTY' },
      consoleSocket,
      pidfdSocket,
      { name: 'detach', alias: ['d'], type: 'boolean', desc: 'detach from the container\'s process' },
      pidFile,
      preserveFds,
      { name: 'ignore-paused', type: 'boolean', desc: 'allow exec in a paused container' },
      { name: 'process-label', type: 'string', desc: 'set the asm process label for the process commonly used with selinux' },
      { name: 'apparmor', type: 'string', desc: 'set the apparmor profile for the process' },
      { name: 'cgroup', type: 'array', desc: 'run the process in an (existing) sub-cgroup(s)' },
    ],
  },
  {
    name: 'events',
    desc: 'display container events such as OOM notifications, cpu, memory, and IO usage statistics',
    positionals: [id],
    flags: [
      { name: 'interval', type: 'string', default: '5s', desc: 'set the stats collection interval' },
      { name: 'stats', type: 'boolean', desc: 'display the container\'s stats then exit' },
    ],
  },
  { name: 'pause', desc: 'pause suspends all processes inside the container', positionals: [id], flags: [] },
  { name: 'resume', desc: 'resumes all processes that have been previously paused', positionals: [id], flags: [] },
  {
    name: 'ps',
    desc: 'ps displays the processes running inside a container',
    positionals: [id, { name: 'ps-options', desc: 'options passed to ps(1) for the table format', required: false, rest: true }],
    flags: [{ name: 'format', alias: ['f'], type: 'string', default: 'table', desc: 'select one of: table or json' }],
    flagsStopAtPositional: true,
  },
  {
    name: 'update',
    desc: 'update container resource constraints',
    positionals: [id],
    flags: [
      { name: 'resources', alias: ['r'], type: 'string', desc: 'path to a file with the LinuxResources JSON to apply, or - for stdin' },
      { name: 'blkio-weight', type: 'number', desc: 'relative block IO weight, 10 to 1000' },
      { name: 'cpu-period', type: 'string', desc: 'CPU CFS period in microseconds' },
      { name: 'cpu-quota', type: 'string', desc: 'CPU CFS quota in microseconds per period' },
      { name: 'cpu-share', type: 'string', desc: 'CPU shares (relative weight)' },
      { name: 'cpu-rt-period', type: 'string', desc: 'CPU realtime period in microseconds' },
      { name: 'cpu-rt-runtime', type: 'string', desc: 'CPU realtime runtime in microseconds' },
      { name: 'cpuset-cpus', type: 'string', desc: 'CPUs to use (0-3, 0,1)' },
      { name: 'cpuset-mems', type: 'string', desc: 'memory nodes to use (0-3, 0,1)' },
      { name: 'memory', type: 'string', desc: 'memory limit in bytes (units k, m, g accepted; -1 for unlimited)' },
      { name: 'memory-reservation', type: 'string', desc: 'memory soft limit in bytes' },
      { name: 'memory-swap', type: 'string', desc: 'total memory usage (memory + swap); -1 for unlimited swap' },
      { name: 'pids-limit', type: 'number', desc: 'maximum number of pids allowed in the container' },
      { name: 'cpu-burst', type: 'string', desc: 'CPU CFS burst in microseconds (cpu.cfs_burst_us, cpu.max.burst)' },
      { name: 'cpu-idle', type: 'string', desc: 'set the cgroup to SCHED_IDLE (1) or not (0)' },
      { name: 'l3-cache-schema', type: 'string', desc: 'the string of Intel RDT/CAT L3 cache schema' },
      { name: 'mem-bw-schema', type: 'string', desc: 'the string of Intel RDT/MBA memory bandwidth schema' },
    ],
  },
  { name: 'features', desc: 'show the enabled features (runtime-spec features.md)', positionals: [], flags: [] },
  {
    name: 'spec',
    desc: 'create a new specification file',
    positionals: [],
    flags: [
      { ...bundle, default: undefined, desc: 'path to the root of the bundle directory (default: current directory)' },
      { name: 'rootless', type: 'boolean', desc: 'generate a configuration for a rootless container' },
    ],
  },
];

export interface Parsed {
  verb: string;
  globals: Record<string, unknown>;
  flags: Record<string, unknown>;
  args: string[];
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function findFlag(defs: FlagDef[], name: string): FlagDef | undefined {
  return defs.find((f) => f.name === name || f.alias?.includes(name));
}

function setFlag(out: Record<string, unknown>, def: FlagDef, value: string | undefined): boolean {
  const key = camel(def.name);
  switch (def.type) {
    case 'boolean':
      if (value === undefined || value === 'true') out[key] = true;
      else if (value === 'false') out[key] = false;
      else return false;
      return true;
    case 'number': {
      if (value === undefined || !/^-?\d+$/.test(value)) return false;
      out[key] = Number(value);
      return true;
    }
    case 'array':
      if (value === undefined) return false;
      out[key] = [...((out[key] as string[]) ?? []), value];
      return true;
    default:
      if (value === undefined) return false;
      out[key] = value;
      return true;
  }
}

function defaults(defs: FlagDef[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const d of defs) if (d.default !== undefined) o[camel(d.name)] = d.default;
  return o;
}

/**
 * Parse argv (without node and script) the way runc's CLI reads it. Returns
 * null for anything it does not accept outright: help, version, an unknown
 * verb or flag, a missing value or positional. The caller then hands the
 * command line to yargs, which prints the usage or the error.
 */
/** Where the verb is in argv (global flags and their values come first); -1 if none. */
export function verbIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) return i;
    const g = globalFlags.find((f) => a === `--${f.name}`);
    if (g && g.type !== 'boolean') i++;
  }
  return -1;
}

export let rejectReason = '';

function reject(why: string): null {
  rejectReason = why;
  return null;
}

export function fastParse(argv: string[]): Parsed | null {
  rejectReason = '';
  const globals = defaults(globalFlags);
  let i = 0;
  // global flags come before the verb
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    const r = takeFlag(argv, i, globalFlags, globals);
    if (r < 0) return reject(flagProblem(argv[i]!, globalFlags));
    i = r;
  }
  const verb = argv[i++];
  const cmd = commands.find((c) => c.name === verb);
  if (!cmd) return reject(verb === undefined ? 'a command is required' : `unknown command ${JSON.stringify(verb)}`);
  const flags = defaults(cmd.flags);
  const args: string[] = [];
  let onlyPositionals = false;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (onlyPositionals || a === '-' || !a.startsWith('-')) {
      args.push(a);
      if (cmd.flagsStopAtPositional) onlyPositionals = true;
      continue;
    }
    if (a === '--') {
      onlyPositionals = true;
      continue;
    }
    // a negative signal number given to kill is a positional, not a flag
    let r = takeFlag(argv, i, cmd.flags, flags);
    if (r < 0) {
      // runc accepts global flags after the verb too
      r = takeFlag(argv, i, globalFlags, globals);
      if (r < 0) return reject(flagProblem(a, [...cmd.flags, ...globalFlags]));
    }
    i = r;
  }
  const required = cmd.positionals.filter((p) => p.required).length;
  const rest = cmd.positionals.some((p) => p.rest);
  if (args.length < required || (!rest && args.length > cmd.positionals.length)) {
    const want = required === cmd.positionals.length ? `exactly ${required}` : `${required} to ${cmd.positionals.length}`;
    return reject(`"${cmd.name}" requires ${want} argument(s)`);
  }
  return { verb: cmd.name, globals, flags, args };
}

function flagProblem(a: string, defs: FlagDef[]): string {
  const name = a.replace(/^--?/, '').split('=')[0]!;
  if (['help', 'h', 'version', 'v'].includes(name)) return '';
  const def = findFlag(defs, name);
  if (!def) return `flag provided but not defined: -${name}`;
  return `invalid value for flag --${def.name}`;
}

/** Returns the index of the last argv element consumed, or -1. */
function takeFlag(argv: string[], i: number, defs: FlagDef[], out: Record<string, unknown>): number {
  const a = argv[i]!;
  let name: string;
  let value: string | undefined;
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    value = eq < 0 ? undefined : a.slice(eq + 1);
  } else {
    const eq = a.indexOf('=');
    name = eq < 0 ? a.slice(1) : a.slice(1, eq);
    value = eq < 0 ? undefined : a.slice(eq + 1);
  }
  if (name === 'help' || name === 'h' || name === 'version' || name === 'v') return -1;
  const def = findFlag(defs, name);
  if (!def) return -1;
  if (def.type !== 'boolean' && value === undefined) {
    if (i + 1 >= argv.length) return -1;
    value = argv[++i];
  }
  return setFlag(out, def, value) ? i : -1;
}
