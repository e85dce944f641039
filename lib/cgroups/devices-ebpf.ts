// cgroup v2 has no devices.allow/deny files: the device list becomes an eBPF
// program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's
// cgroup, as runc does. Pure: rules in, instructions out (lib/sys loads and
// attaches them).
//
// The rules are first reduced the way the v1 controller would hold them (a
// default, allow or deny, and exceptions to it; "a *:* rwm" resets the
// default), so that the program behaves like cgroup v1 for the same list.
import type { DeviceRule } from './resources';

const TYPE = { b: 1, c: 2 } as const; // BPF_DEVCG_DEV_BLOCK, _CHAR
const ACC = { m: 1, r: 2, w: 4 } as const; // BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

interface Exception { type: 'a' | 'b' | 'c'; major: number; minor: number; access: number }
export interface ReducedRules { defaultAllow: boolean; exceptions: Exception[] }

function bits(access: string | undefined): number {
  let b = 0;
  for (const ch of access || 'rwm') b |= ACC[ch as keyof typeof ACC] ?? 0;
  return b;
}

/** Apply rules in order to a fresh cgroup's state (deny all on v2). */
export function reduceRules(rules: DeviceRule[]): ReducedRules {
  let defaultAllow = false;
  let exceptions: Exception[] = [];
  for (const r of rules) {
    const type = (r.type ?? 'a') as 'a' | 'b' | 'c';
    const major = r.major ?? -1;
    const minor = r.minor ?? -1;
    const access = bits(r.access);
    if (type === 'a' && major < 0 && minor < 0 && access === 7) {
      defaultAllow = r.allow;
      exceptions = [];
      continue;
    }
    const same = exceptions.find((e) => e.type === type && e.major === major && e.minor === minor);
    if (r.allow !== defaultAllow) {
      if (same) same.access |= access;
      else exceptions.push({ type, major, minor, access });
    } else if (same) {
      same.access &= ~access;
      if (!same.access) exceptions = exceptions.filter((e) => e !== same);
    }
  }
  return { defaultAllow, exceptions };
}

// eBPF encoding: code, dst|src<<4, s16 off, s32 imm
function ins(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8((dst & 0xf) | ((src & 0xf) << 4), 1);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm | 0, 4);
  return b;
}
const LDXW = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32K = 0x54;
const RSH32K = 0x74;
const MOV32X = 0xbc;
const MOV64K = 0xb7;
const JNEK = 0x55;
const JNEX = 0x5d;
const JEQK = 0x15;
const EXIT = 0x95;

/**
 * The program: R2 = device type, R3 = requested access, R4 = major, R5 =
 * minor (from struct bpf_cgroup_dev_ctx); each exception is a block that
 * returns the opposite of the default when it matches; then the default.
 * An allow exception matches when every requested access is allowed; a deny
 * exception when any requested access is denied.
 */
export function deviceProgram(rules: DeviceRule[]): Buffer {
  const { defaultAllow, exceptions } = reduceRules(rules);
  const out: Buffer[] = [
    ins(LDXW, 2, 1, 0, 0), ins(AND32K, 2, 0, 0, 0xffff),
    ins(LDXW, 3, 1, 0, 0), ins(RSH32K, 3, 0, 0, 16),
    ins(LDXW, 4, 1, 4, 0), ins(LDXW, 5, 1, 8, 0),
  ];
  for (const e of exceptions) {
    const block: [number, number, number, number, number][] = []; // jumps use off = -1 as "to the end of the block"
    if (e.type !== 'a') block.push([JNEK, 2, 0, -1, TYPE[e.type]]);
    if (e.access !== 7) {
      block.push([MOV32X, 1, 3, 0, 0], [AND32K, 1, 0, 0, e.access]);
      if (defaultAllow) block.push([JEQK, 1, 0, -1, 0]); // deny: nothing requested is in it -> next
      else block.push([JNEX, 1, 3, -1, 0]); // allow: something requested is not in it -> next
    }
    if (e.major >= 0) block.push([JNEK, 4, 0, -1, e.major]);
    if (e.minor >= 0) block.push([JNEK, 5, 0, -1, e.minor]);
    block.push([MOV64K, 0, 0, 0, defaultAllow ? 0 : 1], [EXIT, 0, 0, 0, 0]);
    block.forEach(([code, dst, src, off, imm], i) => out.push(ins(code, dst, src, off === -1 ? block.length - i - 1 : off, imm)));
  }
  out.push(ins(MOV64K, 0, 0, 0, defaultAllow ? 1 : 0), ins(EXIT, 0, 0, 0, 0));
  return Buffer.concat(out);
}
