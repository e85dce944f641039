// Shared by integration tests, conformance and bench: build a busybox bundle
// from Debian's busybox-static (no network), run a runtime with its own
// --root, and check that nothing was left behind.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync, closeSync, openSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultSpec } from '../../lib/runtime/spec';

export const REPO = resolve(__dirname, '..', '..');
/**
 * tsrun as the tests run it: the compiled executable (bin/tsrun), or with
 * TSRUN_ENGINE=node the same code on Node from the checkout (bin/tsrun.js).
 */
export const TSRUN = join(REPO, 'bin', process.env.TSRUN_ENGINE === 'node' ? 'tsrun.js' : 'tsrun');

/** The runtime under test: $RUNTIME (tsrun, runc, crun or a path); tsrun by default. */
export function runtimeBin(): string {
  const r = process.env.RUNTIME;
  if (!r || r === 'tsrun') return TSRUN;
  return r;
}

export function runtimeName(): string {
  const b = runtimeBin();
  return b === TSRUN ? 'tsrun' : b.split('/').pop()!;
}

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

/** Make a busybox rootfs at dir (bin/ with applet links, etc/passwd, etc/group). */
export function makeRootfs(dir: string): void {
  if (!BUSYBOX) throw new Error('busybox not found: apt-get install busybox-static');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  spawnSync('chmod', ['0755', join(dir, 'bin', 'busybox')]);
  const list = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of list) {
    if (a === 'busybox') continue;
    try {
      symlinkSync('busybox', join(dir, 'bin', a));
    } catch {
      /* exists */
    }
  }
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\nuser:x:1000:1000:user:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\nuser:x:1000:\n');
}

export interface Config {
  ociVersion: string;
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Record<string, string[]>;
    rlimits?: { type: string; hard: number; soft: number }[];
    noNewPrivileges?: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts: { destination: string; type?: string; source?: string; options?: string[] }[];
  hooks?: Record<string, { path: string; args?: string[]; env?: string[]; timeout?: number }[]>;
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: { containerID: number; hostID: number; size: number }[];
    gidMappings?: { containerID: number; hostID: number; size: number }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    resources?: Record<string, unknown>;
    cgroupsPath?: string;
    sysctl?: Record<string, string>;
    devices?: Record<string, unknown>[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/**
 * `tsrun spec`'s default (runc's), made runnable by any runtime here: no
 * terminal, no ambient caps, no cgroup namespace or cgroup mount, no
 * resources; args as given.
 */
export function defaultConfig(args: string[] = ['true']): Config {
  const s = JSON.parse(JSON.stringify(defaultSpec(false))) as Config;
  s.ociVersion = '1.0.2';
  s.process.terminal = false;
  s.process.args = args;
  delete s.process.capabilities!.ambient;
  s.hostname = 'tsrun-test';
  s.mounts = s.mounts.filter((m) => m.type !== 'cgroup');
  s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'cgroup');
  delete s.linux.resources;
  return s;
}

let seq = 0;

export class Sandbox {
  readonly dir: string;
  readonly root: string;
  readonly rootfs: string;
  readonly bin: string;
  readonly ids = new Set<string>();
  readonly prefix: string;
  readonly cgroupParent: string;

  constructor(name = 'test') {
    this.dir = mkdtempSync(join(tmpdir(), `tsrun-${name}-`));
    // a container root in a user namespace must be able to reach the rootfs
    chmodSync(this.dir, 0o755);
    this.root = join(this.dir, 'state');
    this.rootfs = join(this.dir, 'rootfs');
    makeRootfs(this.rootfs);
    this.bin = runtimeBin();
    this.prefix = `${name}-${process.pid}`;
    this.cgroupParent = `/tsrun-test-${process.pid}-${name}`;
  }

  id(tag = 'c'): string {
    const id = `${this.prefix}-${tag}-${++seq}`;
    this.ids.add(id);
    return id;
  }

  /** A bundle dir with config.json; rootfs shared (read-only root by default). */
  bundle(cfg: Config | string, name = `b${++seq}`): string {
    const b = join(this.dir, name);
    mkdirSync(b, { recursive: true });
    if (typeof cfg === 'string') {
      writeFileSync(join(b, 'config.json'), cfg);
    } else {
      const c = { ...cfg };
      if (cfg.root) c.root = { ...cfg.root, path: cfg.root.path === 'rootfs' ? this.rootfs : cfg.root.path };
      if (!c.linux) c.linux = { namespaces: [] };
      if (!c.linux.cgroupsPath) c.linux = { ...c.linux, cgroupsPath: `${this.cgroupParent}/${name}` };
      writeFileSync(join(b, 'config.json'), JSON.stringify(c, null, 1));
    }
    return b;
  }

  /**
   * Run the runtime. stdout/stderr go to files, not pipes: a container
   * inherits them, and a pipe would stay open (and spawnSync wait) for as
   * long as the container lives.
   */
  rt(args: string[], opts: { input?: string; timeout?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): SpawnSyncReturns<string> {
    const n = ++seq;
    const outF = join(this.dir, `.out.${n}`);
    const errF = join(this.dir, `.err.${n}`);
    const out = openSync(outF, 'w+');
    const err = openSync(errF, 'w+');
    try {
      const r = spawnSync(this.bin, ['--root', this.root, ...args], {
        input: opts.input ?? '',
        timeout: opts.timeout ?? 60_000,
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        killSignal: 'SIGKILL',
        stdio: ['pipe', out, err],
      });
      const stdout = readFileSync(outF, 'utf8');
      const stderr = readFileSync(errF, 'utf8');
      return { ...r, stdout, stderr, output: [null, stdout, stderr] } as SpawnSyncReturns<string>;
    } finally {
      closeSync(out);
      closeSync(err);
      rmSync(outF, { force: true });
      rmSync(errF, { force: true });
    }
  }

  /** run a container in the foreground with cfg; returns stdout/stderr/status. */
  run(cfg: Config, tag = 'run'): SpawnSyncReturns<string> & { id: string } {
    const id = this.id(tag);
    const b = this.bundle(cfg);
    const r = this.rt(['run', '--bundle', b, id]);
    return Object.assign(r, { id });
  }

  state(id: string): { status: string; pid: number; [k: string]: unknown } | null {
    const r = this.rt(['state', id]);
    if (r.status !== 0) return null;
    return JSON.parse(r.stdout);
  }

  /**
   * What the tests left behind (looked for first: a container a test did not
   * delete is a leak), then force-delete every container we made and remove
   * the temp dir.
   */
  cleanup(): string[] {
    const leaks = this.leaks();
    for (const id of this.ids) this.rt(['delete', '--force', id]);
    rmSync(this.dir, { recursive: true, force: true });
    // the test cgroup parent in every hierarchy
    for (const h of cgroupMounts()) {
      const p = join(h, this.cgroupParent);
      if (existsSync(p)) {
        spawnSync('find', [p, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
      }
    }
    return leaks;
  }

  /** What this sandbox left on the machine: mounts, state dirs, cgroups, processes. */
  leaks(): string[] {
    const out: string[] = [];
    const mi = readFileSync('/proc/self/mountinfo', 'utf8');
    for (const line of mi.split('\n')) {
      const mp = line.split(' ')[4];
      if (mp && mp.startsWith(this.dir)) out.push(`mount ${mp}`);
    }
    if (existsSync(this.root)) {
      // the seccomp compile cache is shared by containers, not a container's state
      for (const d of readdirSync(this.root)) if (d !== '.tsrun-seccomp-cache') out.push(`state dir ${d}`);
    }
    for (const h of cgroupMounts()) {
      const p = join(h, this.cgroupParent);
      if (!existsSync(p)) continue;
      const r = spawnSync('find', [p, '-mindepth', '1', '-type', 'd'], { encoding: 'utf8' });
      for (const l of r.stdout.split('\n').filter(Boolean)) out.push(`cgroup ${l}`);
    }
    // ours: named after the sandbox (hooks, bundles) or in its cgroups (every
    // container process, the stage once it joined them)
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
        if (!cmd.includes(this.dir) && !cg.includes(this.cgroupParent)) continue;
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (!/\) Z /.test(st)) out.push(`process ${pid} ${cmd.replace(/\0/g, ' ').trim()}`);
      } catch {
        /* gone */
      }
    }
    return out;
  }
}

export function cgroupMounts(): string[] {
  const mi = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of mi.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(line.split(' ')[4]!);
  }
  return out;
}

/** Processes whose root is not "/" and whose cmdline mentions tag. */
export function containerProcesses(tag: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const root = require('node:fs').readlinkSync(`/proc/${pid}/root`);
      if (root === '/') continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(tag)) out.push(`${pid} ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const PODMAN_SECCOMP = '/usr/share/containers/seccomp.json';

/** podman's default profile in the OCI form podman itself writes, from `podman create --rootfs`. */
export function podmanProfile(sb: Sandbox): Record<string, unknown> | undefined {
  if (!existsSync(PODMAN_SECCOMP) || spawnSync('podman', ['--version']).status !== 0) return undefined;
  const root = join(sb.dir, 'podman-root');
  const run = join(sb.dir, 'podman-run');
  // podman's tmp dir and the cgroups of `init` (conmon's too) stay in the sandbox
  const common = ['--root', root, '--runroot', run, '--tmpdir', join(sb.dir, 'podman-tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
  const r = spawnSync('podman', [...common, 'create', '--cgroup-parent', `${sb.cgroupParent}/podman`, '--rootfs', sb.rootfs, 'true'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const id = r.stdout.trim();
  const cfg = join(root, 'overlay-containers', id, 'userdata', 'config.json');
  try {
    if (!existsSync(cfg)) spawnSync('podman', [...common, 'init', id]); // older podman writes it at init
    return JSON.parse(readFileSync(cfg, 'utf8')).linux.seccomp;
  } catch {
    return undefined;
  } finally {
    spawnSync('podman', [...common, 'rm', '-f', id]);
    spawnSync('umount', ['-R', '-l', root]);
    // the cgroups `init` made (conmon's may still be emptying)
    for (let i = 0; i < 50; i++) {
      const left = cgroupMounts().map((h) => join(h, sb.cgroupParent, 'podman')).filter((p) => existsSync(p));
      for (const p of left) spawnSync('find', [p, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
      if (!left.some((p) => existsSync(p))) break;
      sleepMs(100);
    }
  }
}

/** CI installs every tool a suite needs (.ci/run): there a missing one is a failure, not a skip. */
export const REQUIRE_ALL = process.env.CI === 'true';

/**
 * A whole test file whose tools are missing: a tap skip with the reason, or
 * under CI=true a failed file. Ends the process (nothing else of the file runs).
 */
export function skipSuite(t: { plan(n: number, comment?: string): void }, reason: string): never {
  if (REQUIRE_ALL) {
    process.stderr.write(`required suite cannot run under CI=true: ${reason}\n`);
    process.exit(1);
  }
  t.plan(0, `SKIP: ${reason}`);
  process.exit(0);
}
