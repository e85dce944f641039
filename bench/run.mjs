#!/usr/bin/env node
// tsrun vs runc vs crun, in one run, interleaved round by round.
//   node bench/run.mjs [--rounds N] [--json FILE] [--runtimes tsrun,runc,crun]
// Per round each runtime does one lifecycle (create, start, state, exec,
// pause, resume, update, events, kill, delete) of a busybox container, one `run` of /bin/true,
// one `run` of /bin/true with 30 more mounts (mounts30Cost = the difference), one under
// podman's default seccomp profile (seccompCost; tsrun's first run compiles, later ones reuse
// the compiled program from its cache), and the waiting
// process (between create and start) is measured for RSS and PSS. After the
// rounds: 50 creates at once per runtime (3 times: wall time, creates per
// second, failures) and the peak RSS of each verb (bench/maxrss.c). tsrun is the
// compiled executable (bin/tsrun); tsrun-node is the same code on Node from the
// checkout (bin/tsrun.js). Prints medians, min/max and ratios; --json writes
// them for comparison across commits. Run as root.
//
// crun refuses this host's hybrid cgroups, so its worker runs inside a
// private mount namespace with /sys/fs/cgroup/unified unmounted.
// NODE_EXTRA_CA_CERTS is unset for every measured command: it alone adds
// ~35 ms to each Node start on these machines.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync, chmodSync, openSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
// the runtimes by name: tsrun's two engines, else a command on PATH
const BINS = { tsrun: join(repo, 'bin', 'tsrun'), 'tsrun-node': join(repo, 'bin', 'tsrun.js') };
const binOf = (runtime) => BINS[runtime] ?? runtime;
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : def;
}

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---------------------------------------------------------------- worker --
async function worker(runtime, dir) {
  const bin = binOf(runtime);
  const root = join(dir, `state-${runtime}`);
  const bundle = join(dir, 'bundle');
  const rl = createInterface({ input: process.stdin });
  const devnull = openSync('/dev/null', 'r+');
  // stdio are files, never pipes: the container inherits them and a pipe
  // would keep spawnSync waiting for as long as the container lives
  const errFile = join(dir, `err-${runtime}`);
  const errFd = openSync(errFile, 'w+');
  const lastErr = () => readFileSync(errFile, 'utf8').trim().split('\n').slice(-2).join(' | ');
  const rt = (...args) => {
    const t0 = now();
    const r = spawnSync(bin, ['--root', root, ...args], { env, stdio: ['ignore', devnull, errFd] });
    const ms = now() - t0;
    if (r.status !== 0) throw new Error(`${runtime} ${args.join(' ')}: ${lastErr()}`);
    return ms;
  };
  const rtOut = (...args) => spawnSync(bin, ['--root', root, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', errFd] }).stdout;
  let n = 0;
  for await (const line of rl) {
    if (line === 'quit') break;
    if (line === 'par') {
      process.stdout.write(JSON.stringify(await parallel(bin, root, dir, devnull)) + '\n');
      continue;
    }
    if (line === 'rss') {
      process.stdout.write(JSON.stringify(peakRss(bin, root, dir)) + '\n');
      continue;
    }
    const id = `bench-${runtime}-${process.pid}-${++n}`;
    const res = {};
    try {
      res.create = rt('create', '--bundle', bundle, id);
      const st = JSON.parse(rtOut('state', id));
      const status = readFileSync(`/proc/${st.pid}/status`, 'utf8');
      res.waitRssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      try {
        res.waitPssKb = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${st.pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
      } catch {
        res.waitPssKb = 0;
      }
      res.state = rt('state', id);
      res.start = rt('start', id);
      res.exec = rt('exec', id, '/bin/true');
      res.pause = rt('pause', id);
      res.resume = rt('resume', id);
      res.update = rt('update', '--pids-limit', '1000', id);
      if (runtime !== 'crun') res.eventsStats = rt('events', '--stats', id); // crun has no events verb
      res.kill = rt('kill', id, 'KILL');
      // wait for stopped so that delete measures delete, not the kill's aftermath
      for (let i = 0; i < 500; i++) {
        if (JSON.parse(rtOut('state', id)).status === 'stopped') break;
        await new Promise((r) => setTimeout(r, 2));
      }
      res.delete = rt('delete', id);
      res.lifecycle = res.create + res.start + res.state + res.kill + res.delete;
      const rid = `${id}-run`;
      const t0 = now();
      const r = spawnSync(bin, ['--root', root, 'run', '--bundle', join(dir, 'bundle-true'), rid], { env, stdio: ['ignore', devnull, errFd] });
      res.runTrue = now() - t0;
      if (r.status !== 0) throw new Error(`${runtime} run: ${lastErr()}`);
      const t2 = now();
      const r30 = spawnSync(bin, ['--root', root, 'run', '--bundle', join(dir, 'bundle-mounts'), `${id}-m30`], { env, stdio: ['ignore', devnull, errFd] });
      res.runMounts30 = now() - t2;
      if (r30.status !== 0) throw new Error(`${runtime} run (30 mounts): ${lastErr()}`);
      res.mounts30Cost = res.runMounts30 - res.runTrue;
      if (existsSync(join(dir, 'bundle-seccomp', 'config.json'))) {
        const t3 = now();
        const rs = spawnSync(bin, ['--root', root, 'run', '--bundle', join(dir, 'bundle-seccomp'), `${id}-sc`], { env, stdio: ['ignore', devnull, errFd] });
        res.runSeccomp = now() - t3;
        if (rs.status !== 0) throw new Error(`${runtime} run (podman's seccomp profile): ${lastErr()}`);
        res.seccompCost = res.runSeccomp - res.runTrue;
      }
    } catch (e) {
      res.error = String(e.message ?? e).slice(0, 300);
      spawnSync(bin, ['--root', root, 'delete', '--force', id], { env, stdio: ['ignore', devnull, devnull] });
    }
    process.stdout.write(JSON.stringify(res) + '\n');
  }
  closeSync(devnull);
  closeSync(errFd);
  process.exit(0); // stdin stays referenced after the readline loop
}

/** PAR containers created at once (2 cores here): wall time, throughput, failures. */
const PAR = 50;
async function parallel(bin, root, dir, devnull) {
  const ids = Array.from({ length: PAR }, (_, i) => `par-${process.pid}-${i}`);
  const t0 = now();
  const codes = await Promise.all(ids.map((id, i) => new Promise((resolve) => {
    const c = spawn(bin, ['--root', root, 'create', '--bundle', join(dir, `bundle-par-${i}`), id], { env, stdio: ['ignore', devnull, devnull] });
    c.on('exit', (code) => resolve(code));
  })));
  const ms = now() - t0;
  const failures = codes.filter((c) => c !== 0).length;
  for (const id of ids) spawnSync(bin, ['--root', root, 'delete', '--force', id], { env, stdio: 'ignore' });
  return { parallelMs: ms, parallelFailures: failures, parallelPerSec: ((PAR - failures) * 1000) / ms };
}

/** Peak RSS of each verb of one lifecycle, through bench/maxrss.c. */
function peakRss(bin, root, dir) {
  const helper = join(dir, 'maxrss');
  const out = join(dir, 'maxrss.out');
  const id = `rss-${process.pid}`;
  const res = {};
  for (const [verb, args] of [
    ['create', ['create', '--bundle', join(dir, 'bundle'), id]], ['state', ['state', id]], ['start', ['start', id]],
    ['exec', ['exec', id, '/bin/true']], ['pause', ['pause', id]], ['resume', ['resume', id]], ['kill', ['kill', id, 'KILL']],
  ]) {
    spawnSync(helper, [out, bin, '--root', root, ...args], { env, stdio: 'ignore' });
    res[`peakRss_${verb}`] = Number(readFileSync(out, 'utf8'));
  }
  for (let i = 0; i < 200 && JSON.parse(spawnSync(bin, ['--root', root, 'state', id], { env, encoding: 'utf8' }).stdout || '{}').status !== 'stopped'; i++) spawnSync('sleep', ['0.01']);
  spawnSync(helper, [out, bin, '--root', root, 'delete', '--force', id], { env, stdio: 'ignore' });
  res.peakRss_delete = Number(readFileSync(out, 'utf8'));
  return res;
}

// ---------------------------------------------------------------- driver --
function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function makeBundles(dir) {
  const b = join(dir, 'bundle');
  const r = spawnSync(process.execPath, [join(repo, 'lib', 'build', 'demo.mjs'), b], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundle: ${r.stderr}`);
  const cfg = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  // the spec's default minus what not every runtime here supports identically
  cfg.process.args = ['sleep', '1000'];
  cfg.ociVersion = '1.0.2'; // crun 1.8 refuses newer versions
  cfg.linux.namespaces = cfg.linux.namespaces.filter((n) => n.type !== 'cgroup');
  cfg.mounts = cfg.mounts.filter((m) => m.type !== 'cgroup');
  delete cfg.linux.resources;
  cfg.root.path = join(b, 'rootfs');
  cfg.linux.cgroupsPath = `/tsrun-bench-${process.pid}/c`;
  writeFileSync(join(b, 'config.json'), JSON.stringify(cfg));
  const bt = join(dir, 'bundle-true');
  spawnSync('mkdir', ['-p', bt]);
  writeFileSync(join(bt, 'config.json'), JSON.stringify({ ...cfg, process: { ...cfg.process, args: ['/bin/true'] }, linux: { ...cfg.linux, cgroupsPath: `/tsrun-bench-${process.pid}/t` } }));
  // /bin/true with 30 more mounts: 15 tmpfs (with data options), 10 binds
  // of directories (5 read-only: bind + remount), 5 binds of files
  const bm = join(dir, 'bundle-mounts');
  spawnSync('mkdir', ['-p', join(bm, 'src')]);
  writeFileSync(join(bm, 'src', 'file'), 'x');
  const extra = [];
  for (let i = 0; i < 15; i++) extra.push({ destination: `/mnt/t${i}`, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=0755'] });
  for (let i = 0; i < 10; i++) extra.push({ destination: `/mnt/b${i}`, type: 'bind', source: join(bm, 'src'), options: ['rbind', i < 5 ? 'ro' : 'rw'] });
  for (let i = 0; i < 5; i++) extra.push({ destination: `/mnt/f${i}`, type: 'bind', source: join(bm, 'src', 'file'), options: ['bind', 'ro'] });
  writeFileSync(join(bm, 'config.json'), JSON.stringify({ ...cfg, process: { ...cfg.process, args: ['/bin/true'] }, mounts: [...cfg.mounts, ...extra], linux: { ...cfg.linux, cgroupsPath: `/tsrun-bench-${process.pid}/m` } }));
  // bundles for the parallel creates: each its own cgroup
  for (let i = 0; i < 50; i++) {
    const bp = join(dir, `bundle-par-${i}`);
    spawnSync('mkdir', ['-p', bp]);
    writeFileSync(join(bp, 'config.json'), JSON.stringify({ ...cfg, linux: { ...cfg.linux, cgroupsPath: `/tsrun-bench-${process.pid}/p${i}` } }));
  }
  const cc = spawnSync('cc', ['-O2', '-o', join(dir, 'maxrss'), join(here, 'maxrss.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`maxrss helper: ${cc.stderr}`);
  // /bin/true under podman's default seccomp profile, in the OCI form podman writes
  const profile = podmanSeccomp(dir, join(b, 'rootfs'));
  if (profile) {
    const bs = join(dir, 'bundle-seccomp');
    spawnSync('mkdir', ['-p', bs]);
    writeFileSync(join(bs, 'config.json'), JSON.stringify({ ...cfg, process: { ...cfg.process, args: ['/bin/true'] }, linux: { ...cfg.linux, seccomp: profile, cgroupsPath: `/tsrun-bench-${process.pid}/s` } }));
  } else {
    process.stderr.write('podman not installed: no seccomp metrics\n');
  }
}

function podmanSeccomp(dir, rootfs) {
  if (spawnSync('podman', ['--version']).status !== 0) return undefined;
  const common = ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-run'), '--tmpdir', join(dir, 'podman-tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
  const r = spawnSync('podman', [...common, 'create', '--cgroup-parent', `/tsrun-bench-${process.pid}/podman`, '--rootfs', rootfs, 'true'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const id = r.stdout.trim();
  const cfg = join(dir, 'podman-root', 'overlay-containers', id, 'userdata', 'config.json');
  try {
    if (!existsSync(cfg)) spawnSync('podman', [...common, 'init', id]);
    return JSON.parse(readFileSync(cfg, 'utf8')).linux.seccomp;
  } catch {
    return undefined;
  } finally {
    spawnSync('podman', [...common, 'rm', '-f', id]);
    spawnSync('umount', ['-R', '-l', join(dir, 'podman-root')]);
  }
}

function startWorker(runtime, dir) {
  const self = fileURLToPath(import.meta.url);
  let child;
  if (runtime === 'crun') {
    child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      `umount /sys/fs/cgroup/unified 2>/dev/null; exec "${process.execPath}" "${self}" --worker crun --dir "${dir}"`], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  } else {
    child = spawn(process.execPath, [self, '--worker', runtime, '--dir', dir], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  }
  const lines = createInterface({ input: child.stdout });
  const queue = [];
  let waiting;
  lines.on('line', (l) => (waiting ? (waiting(l), (waiting = undefined)) : queue.push(l)));
  return {
    round(cmd = 'go') {
      child.stdin.write(`${cmd}\n`);
      return new Promise((r) => (queue.length ? r(queue.shift()) : (waiting = r))).then((l) => JSON.parse(l));
    },
    quit() {
      child.stdin.write('quit\n');
      return new Promise((r) => child.on('exit', r));
    },
  };
}

async function driver() {
  const rounds = Number(arg('--rounds', '20'));
  const wanted = arg('--runtimes', 'tsrun,tsrun-node,runc,crun').split(',');
  const runtimes = wanted.filter((r) => BINS[r] || spawnSync('which', [r]).status === 0);
  const dir = mkdtempSync(join(tmpdir(), 'tsrun-bench-'));
  chmodSync(dir, 0o755);
  makeBundles(dir);
  const workers = Object.fromEntries(runtimes.map((r) => [r, startWorker(r, dir)]));
  const data = Object.fromEntries(runtimes.map((r) => [r, []]));
  const cleanup = () => {
    // containers a failed or interrupted round left, then the bench cgroups
    for (const r of runtimes) {
      const root = join(dir, `state-${r}`);
      if (!existsSync(root)) continue;
      for (const id of readdirSync(root)) {
        const pre = r === 'crun' ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount /sys/fs/cgroup/unified 2>/dev/null; crun --root ${root} delete --force ${id}`] : [binOf(r), '--root', root, 'delete', '--force', id];
        spawnSync(pre[0], pre.slice(1), { env, stdio: 'ignore' });
      }
    }
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      const fs = line.split(' - ')[1]?.split(' ')[0];
      if (fs === 'cgroup' || fs === 'cgroup2') {
        const p = join(f[4], `tsrun-bench-${process.pid}`);
        if (existsSync(p)) spawnSync('find', [p, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });
  try {
    // one warm-up round, not counted
    for (const r of runtimes) await workers[r].round();
    for (let i = 0; i < rounds; i++) {
      for (const r of runtimes) data[r].push(await workers[r].round());
    }
    // 50 parallel creates, one runtime at a time (3 times each, interleaved)
    for (let i = 0; i < 3; i++) for (const r of runtimes) data[r].push(await workers[r].round('par'));
    for (const r of runtimes) data[r].push(await workers[r].round('rss'));
    for (const r of runtimes) await workers[r].quit();
  } finally {
    cleanup();
  }

  const metrics = ['create', 'start', 'state', 'exec', 'pause', 'resume', 'update', 'eventsStats', 'kill', 'delete', 'lifecycle', 'runTrue', 'runMounts30', 'mounts30Cost', 'runSeccomp', 'seccompCost', 'waitRssKb', 'waitPssKb',
    'parallelMs', 'parallelPerSec', 'parallelFailures',
    ...['create', 'state', 'start', 'exec', 'pause', 'resume', 'kill', 'delete'].map((v) => `peakRss_${v}`)];
  const exe = BINS.tsrun;
  const out = {
    date: new Date().toISOString(), rounds, node: process.version,
    bun: spawnSync(exe, ['--version'], { encoding: 'utf8' }).stdout.match(/bun: (\S+)/)?.[1],
    // what an install puts on disk: the one executable (npm's package adds README and LICENSE)
    installBytes: existsSync(exe) ? statSync(exe).size : undefined,
    runtimes: {}, ratios: {},
  };
  for (const r of runtimes) {
    const ok = data[r].filter((x) => !x.error);
    const errs = data[r].filter((x) => x.error);
    out.runtimes[r] = { failures: errs.length, firstError: errs[0]?.error };
    for (const m of metrics) {
      const v = ok.map((x) => x[m]).filter((x) => typeof x === 'number');
      if (!v.length) continue;
      out.runtimes[r][m] = { median: median(v), min: Math.min(...v), max: Math.max(...v) };
    }
  }
  // tsrun (and tsrun-node) against each runtime that is not tsrun
  const pairs = [];
  for (const mine of runtimes.filter((r) => BINS[r])) for (const other of runtimes.filter((r) => !BINS[r])) pairs.push(`${mine}/${other}`);
  for (const pair of pairs) {
    const [mine, other] = pair.split('/');
    out.ratios[pair] = {};
    for (const m of metrics) {
      const a = out.runtimes[mine]?.[m]?.median;
      const b = out.runtimes[other]?.[m]?.median;
      if (a && b) out.ratios[pair][m] = +(a / b).toFixed(2);
    }
  }
  // table
  const cols = ['metric', ...runtimes.map((r) => `${r} median [min-max]`), ...pairs];
  const rows = [cols];
  for (const m of metrics) {
    const unit = m.endsWith('Kb') || m.startsWith('peakRss') ? ' KB' : m === 'parallelPerSec' ? '/s' : m === 'parallelFailures' ? '' : ' ms';
    const row = [m];
    let any = false;
    for (const r of runtimes) {
      const s = out.runtimes[r][m];
      if (s) any = true;
      row.push(s ? `${s.median.toFixed(unit === ' ms' || unit === '/s' ? 1 : 0)}${unit} [${s.min.toFixed(0)}-${s.max.toFixed(0)}]` : '-');
    }
    for (const pair of pairs) row.push(out.ratios[pair]?.[m]?.toFixed(2) ?? '-');
    if (any) rows.push(row);
  }
  const w = cols.map((_, i) => Math.max(...rows.map((r) => r[i].length)) + 2);
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('')).join('\n'));
  for (const r of runtimes) if (out.runtimes[r].failures) console.log(`${r}: ${out.runtimes[r].failures} failed rounds: ${out.runtimes[r].firstError}`);
  if (out.installBytes) console.log(`install size: ${(out.installBytes / 1048576).toFixed(1)} MiB (bin/tsrun, Bun ${out.bun})`);
  const jf = arg('--json');
  if (jf) writeFileSync(jf, JSON.stringify(out, null, 2) + '\n');
}

if (process.argv.includes('--worker')) {
  await worker(arg('--worker'), arg('--dir'));
} else {
  await driver();
}
