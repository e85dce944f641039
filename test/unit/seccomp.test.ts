// The seccomp compiler as pure logic: programs run on a classic BPF
// interpreter over synthetic seccomp_data, for the arch paths this machine's
// kernel cannot take (i386 on a kernel without int 0x80, arm, aarch64), the
// jump relaxation of big programs, and bad input. What the kernel itself
// does with the programs is conformance/seccomp.test.ts.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { compileSeccomp, RET } from '../../lib/seccomp';
import type { LinuxSeccomp } from '../../lib/spec/types';

const tables = JSON.parse(readFileSync(require.resolve('../../lib/seccomp/syscalls.json'), 'utf8')) as Record<string, Record<string, number>>;
const AUDIT = { x86_64: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7, arm: 0x40000028 } as const;

/** Run a classic BPF seccomp program on {nr, arch, args}. */
function run(prog: Buffer, nr: number, arch: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + 8 * i));
  let A = 0;
  let pc = 0;
  for (let steps = 0; steps < 100000; steps++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: A = data.readUInt32LE(k); break;
      case 0x54: A = (A & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x15: pc += A === k ? jt : jf; break;
      case 0x25: pc += A > k ? jt : jf; break;
      case 0x35: pc += A >= k ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`bad opcode ${code.toString(16)}`);
    }
    if (pc * 8 >= prog.length) throw new Error('fell off the program');
  }
  throw new Error('no return');
}

const errno = (n: number) => (RET.ERRNO | n) >>> 0;

t.test('arch paths: each arch uses its own numbers; the native arch is always in', async (t) => {
  const s: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['getsid'], action: 'SCMP_ACT_ERRNO', errnoRet: 99 }],
  };
  const x = compileSeccomp(s, 'x64');
  t.equal(run(x.program, tables.x86_64!.getsid!, AUDIT.x86_64), errno(99), 'x86_64 (native, not listed)');
  t.equal(run(x.program, tables.x86!.getsid!, AUDIT.x86), errno(99), 'i386');
  t.equal(run(x.program, tables.x86_64!.getsid!, AUDIT.x86), RET.ALLOW, 'the x86_64 number means something else on i386');
  t.equal(run(x.program, tables.x32!.getsid! | 0x40000000, AUDIT.x86_64), errno(99), 'x32');
  t.equal(run(x.program, 1, AUDIT.aarch64), RET.KILL_PROCESS, 'an arch this kernel cannot run');
  const a = compileSeccomp({ ...s, architectures: ['SCMP_ARCH_ARM'] }, 'arm64');
  t.equal(run(a.program, tables.aarch64!.getsid!, AUDIT.aarch64), errno(99), 'aarch64');
  t.equal(run(a.program, tables.arm!.getsid!, AUDIT.arm), errno(99), 'arm');
  const only = compileSeccomp({ ...s, architectures: ['SCMP_ARCH_X86_64'] }, 'x64');
  t.equal(run(only.program, tables.x32!.getsid! | 0x40000000, AUDIT.x86_64), RET.KILL_PROCESS, 'x32 not named: killed');
  t.equal(run(only.program, tables.x86!.getsid!, AUDIT.x86), RET.KILL_PROCESS, 'i386 not named: killed');
});

t.test('x86 socketcall and ipc multiplexers follow the direct syscalls', async (t) => {
  const p = compileSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86'],
    syscalls: [{ names: ['socket', 'connect', 'semop', 'getpid'], action: 'SCMP_ACT_ALLOW' }],
  }, 'x64').program;
  const x86 = tables.x86!;
  t.equal(run(p, x86.socket!, AUDIT.x86), RET.ALLOW, 'socket(2) direct');
  t.equal(run(p, x86.socketcall!, AUDIT.x86, [1n]), RET.ALLOW, 'socketcall(SYS_SOCKET)');
  t.equal(run(p, x86.socketcall!, AUDIT.x86, [3n]), RET.ALLOW, 'socketcall(SYS_CONNECT)');
  t.equal(run(p, x86.socketcall!, AUDIT.x86, [2n]), errno(1), 'socketcall(SYS_BIND): not allowed');
  t.equal(run(p, x86.ipc!, AUDIT.x86, [1n]), RET.ALLOW, 'ipc(SEMOP)');
  t.equal(run(p, x86.ipc!, AUDIT.x86, [21n]), errno(1), 'ipc(SHMAT): not allowed');
});

t.test('ENOSYS above the newest syscall the profile names; clone3 unnamed -> ENOSYS', async (t) => {
  const p = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write', 'openat'], action: 'SCMP_ACT_ALLOW' }] }, 'x64').program;
  const x = tables.x86_64!;
  t.equal(run(p, x.read!, AUDIT.x86_64), RET.ALLOW);
  t.equal(run(p, x.close!, AUDIT.x86_64), errno(1), 'known to the profile era, not allowed: the default');
  t.equal(run(p, x.openat! + 1, AUDIT.x86_64), errno(38), 'newer than openat: ENOSYS');
  t.equal(run(p, 100000, AUDIT.x86_64), errno(38));
  const c3 = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'mseal'], action: 'SCMP_ACT_ALLOW' }] }, 'x64').program;
  t.equal(run(c3, x.clone3!, AUDIT.x86_64), errno(38), 'clone3 not in the profile: ENOSYS for the libc fallback');
  const allow = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILL' }] }, 'x64').program;
  t.equal(run(allow, 100000, AUDIT.x86_64), RET.ALLOW, 'an allow-by-default profile: no ENOSYS rule');
});

t.test('64-bit comparisons on a 32-bit arch compare the low half', async (t) => {
  const p = compileSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86'],
    syscalls: [{ names: ['getsid'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, op: 'SCMP_CMP_GT', value: 10 }] }],
  }, 'x64').program;
  t.equal(run(p, tables.x86!.getsid!, AUDIT.x86, [11n]), errno(5));
  t.equal(run(p, tables.x86!.getsid!, AUDIT.x86, [10n]), RET.ALLOW);
});

t.test('a rule order: conditional rules first in profile order, then the unconditional one', async (t) => {
  const p = compileSeccomp({
    defaultAction: 'SCMP_ACT_KILL',
    syscalls: [
      { names: ['getsid'], action: 'SCMP_ACT_ALLOW' },
      { names: ['getsid'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1 }] },
    ],
  }, 'x64').program;
  t.equal(run(p, tables.x86_64!.getsid!, AUDIT.x86_64, [1n]), errno(7));
  t.equal(run(p, tables.x86_64!.getsid!, AUDIT.x86_64, [2n]), RET.ALLOW);
});

t.test('a big profile stays well under the kernel limit; far jumps go through trampolines', async (t) => {
  const names = Object.keys(tables.x86_64!);
  // every other syscall allowed, each with an argument check: thousands of instructions
  const syscalls = names.filter((_, i) => i % 2 === 0).map((n, i) => ({
    names: [n], action: 'SCMP_ACT_ALLOW', args: [{ index: i % 6, op: 'SCMP_CMP_NE', value: 0x1_0000_0000 + i }],
  }));
  const c = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }, 'x64');
  t.ok(c.instructions > 255 * 3, `${c.instructions} instructions`);
  for (const [i, s] of syscalls.entries()) {
    const nr = tables.x86_64![s.names[0]!]!;
    const args = [0n, 0n, 0n, 0n, 0n, 0n];
    t.equal(run(c.program, nr, AUDIT.x86_64, args), RET.ALLOW, s.names[0]!);
    args[i % 6] = BigInt(0x1_0000_0000 + i);
    if (run(c.program, nr, AUDIT.x86_64, args) !== errno(1)) t.fail(`${s.names[0]} with the matching arg is not denied`);
  }
  const huge = names.map((n, i) => ({ names: [n], action: 'SCMP_ACT_ALLOW', args: Array.from({ length: 6 }, (_, j) => ({ index: j, op: 'SCMP_CMP_MASKED_EQ', value: 0xff + i, valueTwo: j })) }));
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: huge }, 'x64'), /compiles to \d+ BPF instructions, more than the kernel's limit of 4096/);
});

t.test('bad input: one clear error', async (t) => {
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }, 'x64'),
    /linux\.seccomp\.syscalls\[0\]: errnoRet is only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 3 }, 'x64'), /defaultAction: errnoRet is only allowed/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_BOGUS' }, 'x64'), /unknown action "SCMP_ACT_BOGUS"/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86'] }, 'x64'), /unknown architecture "x86"/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] }, 'x64'), /args\[0\]\.index: 6 is not a syscall argument/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, 'x64'), /SCMP_ACT_NOTIFY needs listenerPath/);
  // runc's refusals: the runtime's own writes would be trapped
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/l', syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_NOTIFY' }] }, 'x64'),
    /linux\.seccomp\.syscalls\[0\]: SCMP_ACT_NOTIFY cannot be used for the write syscall/);
  t.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/l' }, 'x64'), /defaultAction: SCMP_ACT_NOTIFY cannot be used as default action/);
  const debug: string[] = [];
  const c = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call', 'read'], action: 'SCMP_ACT_KILL' }] }, 'x64', (m) => debug.push(m));
  t.same(c.skipped, ['no_such_call']);
  t.match(debug[0], /unknown syscall "no_such_call" skipped/);
});

t.test('syscall tables: complete against this machine\'s kernel headers, numbers unique per arch', async (t) => {
  for (const [arch, tab] of Object.entries(tables)) {
    const seen = new Map<number, string>();
    for (const [n, nr] of Object.entries(tab)) {
      // the one alias the headers define: arm_sync_file_range is sync_file_range2
      if (seen.has(nr) && !/sync_file_range/.test(n)) t.fail(`${arch}: ${n} and ${seen.get(nr)} share ${nr}`);
      seen.set(nr, n);
    }
    for (const must of ['read', 'write', 'execve', 'exit_group', 'openat', 'clone', 'mmap', 'close']) {
      if ((arch === 'x86' || arch === 'arm') && must === 'mmap') continue; // 32-bit: mmap2
      t.ok(must in tab, `${arch}: ${must}`);
    }
  }
  const hdr = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
  if (existsSync(hdr)) {
    let n = 0;
    for (const m of readFileSync(hdr, 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm)) {
      n++;
      if (tables.x86_64![m[1]!] !== Number(m[2])) t.fail(`x86_64 ${m[1]} is ${tables.x86_64![m[1]!]}, headers say ${m[2]}`);
    }
    t.ok(n > 300, `${n} x86_64 syscalls checked against ${hdr}`);
  }
});
