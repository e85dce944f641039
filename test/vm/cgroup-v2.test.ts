// cgroup v2 for real, on a pure v2 hierarchy with every controller: a qemu
// guest (test/vm/qemu.ts) runs tsrun from this checkout against configs
// written here, and reports what the cgroup files say and what the kernel
// did. One boot for the whole batch: everything is slow under emulation.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, skipSuite, TSRUN, type Config } from '../lib/harness';
import { findVm, runInVm } from './qemu';

const vm = findVm();
if (typeof vm === 'string') skipSuite(t, `${vm} (.ci/run installs qemu-system-x86 and linux-image-amd64)`);

// ~3 minutes under emulation here; room for a slower CI machine
t.setTimeout(900000);

const work = mkdtempSync(join(tmpdir(), 'tsrun-v2vm-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const share = join(work, 'share');
mkdirSync(join(share, 'b'), { recursive: true });

/** A bundle in the share for the guest; its rootfs is the guest's /run/rootfs. */
function bundle(name: string, args: string[], mod?: (c: Config) => void): string {
  const c = defaultConfig(args);
  c.root = { path: '/run/rootfs', readonly: true };
  c.linux.cgroupsPath = `/tsrun-v2/${name}`;
  mod?.(c);
  mkdirSync(join(share, 'b', name), { recursive: true });
  writeFileSync(join(share, 'b', name, 'config.json'), JSON.stringify(c));
  return `/mnt/b/${name}`;
}

const MiB = 1024 * 1024;
const res = bundle('res', ['sleep', '1000'], (c) => {
  c.linux.resources = {
    memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 96 * MiB },
    cpu: { shares: 512, quota: 20000, period: 100000, cpus: '0', mems: '0' },
    pids: { limit: 50 },
    hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }],
    unified: { 'memory.high': String(60 * MiB) },
  };
});
const oom = bundle('oom', ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" x); echo survived'], (c) => {
  c.linux.resources = { memory: { limit: 16 * MiB, swap: 16 * MiB } };
});
const pids = bundle('pids', ['sh', '-c', 'n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & [ $? = 0 ] && n=$((n+1)); done; echo started=$n'], (c) => {
  c.linux.resources = { pids: { limit: 4 } };
});
// devices through the eBPF filter: mknod is allowed (b *:* m), reading a
// disk is not; with an allow rule the same open reaches the (absent) driver
const devScript = 'mknod /dev/xsda b 8 0 && echo mknod-ok; head -c1 /dev/xsda 2>&1 | tr " " _; head -c1 /dev/zero | wc -c';
const devCaps = (c: Config) => {
  c.process.capabilities = { bounding: ['CAP_MKNOD'], effective: ['CAP_MKNOD'], permitted: ['CAP_MKNOD'] };
};
const devDeny = bundle('devdeny', ['sh', '-c', devScript], (c) => {
  devCaps(c);
  c.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
});
const devAllow = bundle('devallow', ['sh', '-c', devScript], (c) => {
  devCaps(c);
  c.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 8, minor: 0, access: 'r' }] };
});
// update with a device list replaces the filter: a node denied at create is
// reachable after (the old program detached, not left to veto the new one);
// runc's default list (/dev/zero...) still comes after the update's rules
const devUpd = bundle('devupd', ['sleep', '1000'], (c) => {
  devCaps(c);
  c.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 8, minor: 0, access: 'm' }] };
});

// an OOM that events must report (the hog waits until events is watching)
const oomev = bundle('oomev', ['sh', '-c', 'sleep 3; x=$(head -c 100000000 /dev/zero | tr "\\0" x)'], (c) => {
  c.linux.resources = { memory: { limit: 16 * MiB, swap: 16 * MiB } };
});
const zero = bundle('zero', ['true'], (c) => {
  c.linux.resources = { pids: { limit: 0 } };
});

// rootless in a delegated subtree (as systemd gives a user session): uid 1000
// owns /sys/fs/cgroup/deleg, its shell sits in deleg/shell, and tsrun run by
// it makes deleg/c1 and enforces the limits there
const RL_UID = 1000;
const rootless = bundle('rootless', ['sleep', '1000'], (c) => {
  c.linux.cgroupsPath = '/deleg/c1';
  c.linux.namespaces.push({ type: 'user' });
  c.linux.uidMappings = [{ containerID: 0, hostID: RL_UID, size: 1 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: RL_UID, size: 1 }];
  for (const m of c.mounts) if (m.destination === '/dev/pts') m.options = m.options!.filter((o) => o !== 'gid=5');
  c.mounts = c.mounts.filter((m) => m.destination !== '/sys');
  c.mounts.push({ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  c.linux.resources = { pids: { limit: 17 }, memory: { limit: 48 * MiB } };
});

// the guest: a busybox rootfs in its /run, then the checks, one key=value per line
const T = `${TSRUN} --root /run/tsrun-v2`;
const CG = '/sys/fs/cgroup/tsrun-v2';
const script = `
set -u
R=/run/rootfs
mkdir -p $R/bin $R/proc $R/sys $R/dev $R/tmp $R/etc
cp /bin/busybox $R/bin/busybox
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox $R/bin/$a; done
echo 'root:x:0:0:root:/root:/bin/sh' > $R/etc/passwd
kv() { echo "$1=\${2:-}"; }
f() { cat "$1" 2>/dev/null | head -1 | tr ' ' '_'; }

${T} create --bundle ${res} res; kv create_res $?
D=${CG}/res
kv memory.max $(f $D/memory.max); kv memory.low $(f $D/memory.low); kv memory.swap.max $(f $D/memory.swap.max)
kv memory.high $(f $D/memory.high); kv cpu.weight $(f $D/cpu.weight); kv cpu.max $(f $D/cpu.max)
kv cpuset.cpus $(f $D/cpuset.cpus); kv cpuset.mems $(f $D/cpuset.mems); kv pids.max $(f $D/pids.max)
kv hugetlb.2MB.max $(f $D/hugetlb.2MB.max)
kv init_in_cgroup $(grep -c "^0::/tsrun-v2/res$" /proc/$(${T} state res | grep '"pid"' | tr -dc 0-9)/cgroup)
${T} start res; kv start $?
${T} pause res; kv pause $?; kv freeze_paused $(f $D/cgroup.freeze); kv state_paused $(${T} state res | grep -o '"status": "[a-z]*"' | tr -d '" ' )
${T} resume res; kv resume $?; kv freeze_resumed $(f $D/cgroup.freeze)
${T} update --memory 96M --pids-limit 20 --cpu-quota 50000 res; kv update $?
kv updated_memory.max $(f $D/memory.max); kv updated_pids.max $(f $D/pids.max); kv updated_cpu.max $(f $D/cpu.max)
echo '{"memory":{"limit":67108864},"unified":{"memory.high":"50331648"}}' | ${T} update --resources - res; kv update_json $?
kv json_memory.max $(f $D/memory.max); kv json_memory.high $(f $D/memory.high)
${T} events --stats res > /run/tmp/ev.json; kv events $?
kv events_type $(grep -o '"type":"stats"' /run/tmp/ev.json | head -1 | tr -d '"')
kv events_pids $(grep -o '"pids":{"current":[0-9]*' /run/tmp/ev.json | tr -dc 0-9)
${T} exec -d res sh -c 'sleep 1000 & sleep 1000'; kv exec $?
kv procs_before_kill $(cat $D/cgroup.procs | wc -l)
${T} kill --all res KILL; kv kill_all $?
i=0; while [ $i -lt 100 ] && [ -n "$(cat $D/cgroup.procs)" ]; do sleep 0.1; i=$((i+1)); done
kv procs_after_kill $(cat $D/cgroup.procs | wc -l)
${T} delete res; kv delete $?
kv cgroup_removed $([ -d $D ] && echo no || echo yes)

${T} run --bundle ${oom} oom > /run/tmp/oom.out 2>&1; kv oom_status $?
kv oom_output $(grep -c survived /run/tmp/oom.out)

${T} run --bundle ${pids} pids > /run/tmp/pids.out 2>&1; kv pids_status $?
kv pids_cant_fork $(grep -c "can't fork" /run/tmp/pids.out)

${T} create --bundle ${oomev} oomev </dev/null >/dev/null 2>&1
${T} events oomev > /run/tmp/oomev.json 2>&1 &
EV=$!
${T} start oomev
wait $EV
kv oom_events $(grep -c '"type":"oom"' /run/tmp/oomev.json)
${T} delete oomev

${T} run --bundle ${devDeny} devdeny > /run/tmp/devdeny.out 2>&1; kv devdeny_status $?
kv devdeny_err "$(grep tsrun: /run/tmp/devdeny.out | tr ' ' _)"; kv devdeny_mknod $(grep -c mknod-ok /run/tmp/devdeny.out); kv devdeny_open $(grep -c Operation_not_permitted /run/tmp/devdeny.out); kv devdeny_zero $(tail -1 /run/tmp/devdeny.out)
${T} run --bundle ${devAllow} devallow > /run/tmp/devallow.out 2>&1
kv devallow_open_denied $(grep -c Operation_not_permitted /run/tmp/devallow.out); kv devallow_enxio $(grep -c No_such_device /run/tmp/devallow.out)

${T} run -d --bundle ${devUpd} devupd </dev/null >/dev/null 2>&1; kv devupd_run $?
${T} exec devupd sh -c 'mknod /dev/xsda b 8 0; head -c1 /dev/xsda 2>&1 | tr " " _' > /run/tmp/du1.out 2>&1
echo '{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"rm"}]}' | ${T} update --resources - devupd; kv devupd_update $?
${T} exec devupd sh -c 'head -c1 /dev/xsda 2>&1 | tr " " _; head -c1 /dev/zero | wc -c' > /run/tmp/du2.out 2>&1
kv devupd_before_denied $(grep -c Operation_not_permitted /run/tmp/du1.out); kv devupd_after_enxio $(grep -c No_such_device /run/tmp/du2.out)
kv devupd_zero $(tail -1 /run/tmp/du2.out)
${T} delete -f devupd; kv devupd_delete $?

${T} run --bundle ${zero} zero > /run/tmp/zero.out 2>&1; kv zero_status $?
kv zero_msg "$(head -1 /run/tmp/zero.out | tr ' ' _)"
kv leftover_cgroups $(find ${CG} -mindepth 1 -type d 2>/dev/null | wc -l)

D2=/sys/fs/cgroup/deleg
mkdir -p $D2/shell /run/u1 && chown ${RL_UID}:${RL_UID} $D2 $D2/cgroup.procs $D2/cgroup.subtree_control $D2/cgroup.threads $D2/shell $D2/shell/cgroup.procs /run/u1
echo $$ > $D2/shell/cgroup.procs
U="setpriv --reuid=${RL_UID} --regid=${RL_UID} --clear-groups env XDG_RUNTIME_DIR=/run/u1 ${TSRUN}"
$U create --bundle ${rootless} rl </dev/null > /run/tmp/rl.out 2>&1; kv rl_create $?
kv rl_err "$(grep tsrun: /run/tmp/rl.out | tr ' ' _)"
kv rl_pids.max $(f $D2/c1/pids.max); kv rl_memory.max $(f $D2/c1/memory.max)
kv rl_init_in_cgroup $(grep -c "^0::/deleg/c1$" /proc/$($U state rl | grep '"pid"' | tr -dc 0-9)/cgroup)
kv rl_state_root $(ls /run/u1/tsrun)
$U delete --force rl; kv rl_delete $?
kv rl_cgroup_removed $([ -d $D2/c1 ] && echo no || echo yes)
`;

t.test('tsrun on a pure cgroup v2 hierarchy (qemu guest)', async (t) => {
  const r = runInVm(vm, work, script);
  t.equal(r.status, 0, `guest script ran (${r.ms} ms)\n${r.console.slice(-2000)}`);
  const kv = new Map(r.output.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.comment(r.output);
  const want: Record<string, string> = {
    create_res: '0', 'memory.max': String(64 * MiB), 'memory.low': String(32 * MiB),
    'memory.swap.max': String(32 * MiB), 'memory.high': String(60 * MiB), 'cpu.weight': '20', 'cpu.max': '20000_100000',
    'cpuset.cpus': '0', 'cpuset.mems': '0', 'pids.max': '50', 'hugetlb.2MB.max': String(4 * MiB), init_in_cgroup: '1',
    start: '0', pause: '0', freeze_paused: '1', state_paused: 'status:paused', resume: '0', freeze_resumed: '0',
    update: '0', 'updated_memory.max': String(96 * MiB), 'updated_pids.max': '20', 'updated_cpu.max': '50000_100000',
    update_json: '0', 'json_memory.max': String(64 * MiB), 'json_memory.high': String(48 * MiB),
    events: '0', events_type: 'type:stats', exec: '0', kill_all: '0', procs_after_kill: '0', delete: '0', cgroup_removed: 'yes',
    devdeny_status: '0', devdeny_mknod: '1', devdeny_open: '1', devdeny_zero: '1', devallow_open_denied: '0', devallow_enxio: '1',
    devupd_run: '0', devupd_update: '0', devupd_before_denied: '1', devupd_after_enxio: '1', devupd_zero: '1', devupd_delete: '0',
    rl_create: '0', rl_err: '', 'rl_pids.max': '17', 'rl_memory.max': String(48 * MiB), rl_init_in_cgroup: '1', rl_state_root: 'rl', rl_delete: '0', rl_cgroup_removed: 'yes',
    oom_status: '137', oom_output: '0', pids_cant_fork: '1', zero_status: '1', leftover_cgroups: '0',
  };
  for (const [k, v] of Object.entries(want)) t.equal(kv.get(k), v, k);
  t.ok(Number(kv.get('events_pids')) >= 1, 'events --stats counts the pids');
  // one event per OOM kill: the pipeline can lose more than one process (2 seen once)
  t.ok(Number(kv.get('oom_events')) >= 1, `events reports the OOM kill (${kv.get('oom_events')} events)`);
  t.ok(Number(kv.get('procs_before_kill')) >= 3, 'init and the exec\'d processes were in the cgroup');
  t.not(kv.get('pids_status'), '0', 'the shell fails when forks stop at pids.max');
  t.match(kv.get('zero_msg'), /tsrun:/, 'pids.limit 0 is a real limit on v2: nothing can start, one clear error');
});
