// The cgroup v2 device program as pure logic: the rules reduced like the v1
// controller, then run on an interpreter of the eBPF subset it uses. The
// kernel runs it in test/vm/cgroup-v2.test.ts.
import t from 'tap';
import { deviceProgram, reduceRules } from '../../lib/cgroups/devices-ebpf';
import { DEFAULT_DEVICE_RULES, type DeviceRule } from '../../lib/cgroups/resources';

/** Run the program on (type 'b'|'c', access 'rwm' subset, major, minor): 1 allow, 0 deny. */
function run(prog: Buffer, type: 'b' | 'c', access: string, major: number, minor: number): number {
  let acc = 0;
  for (const ch of access) acc |= ({ m: 1, r: 2, w: 4 } as Record<string, number>)[ch]!;
  const ctx = [((acc << 16) | (type === 'b' ? 1 : 2)) >>> 0, major, minor];
  const R = new Array<number>(11).fill(0);
  for (let pc = 0; pc * 8 < prog.length;) {
    const code = prog[pc * 8]!;
    const dst = prog[pc * 8 + 1]! & 0xf;
    const src = prog[pc * 8 + 1]! >> 4;
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = prog.readInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x61: if (src !== 1) throw new Error('ldx from a non-ctx register'); R[dst] = ctx[off / 4]!; break;
      case 0x54: R[dst] = (R[dst]! & imm) >>> 0; break;
      case 0x74: R[dst] = R[dst]! >>> imm; break;
      case 0xbc: R[dst] = R[src]!; break;
      case 0xb7: R[dst] = imm; break;
      case 0x55: if (R[dst] !== (imm >>> 0)) pc += off; break;
      case 0x5d: if (R[dst] !== R[src]) pc += off; break;
      case 0x15: if (R[dst] === (imm >>> 0)) pc += off; break;
      case 0x95: return R[0]!;
      default: throw new Error(`opcode ${code.toString(16)}`);
    }
  }
  throw new Error('fell off the program');
}

const denyAll: DeviceRule = { allow: false, access: 'rwm' };

t.test('runc\'s usual list: deny all, then the default allow list', async (t) => {
  const p = deviceProgram([denyAll, ...DEFAULT_DEVICE_RULES]);
  t.equal(run(p, 'c', 'rw', 1, 3), 1, '/dev/null read/write');
  t.equal(run(p, 'c', 'rw', 136, 7), 1, 'a pty (136:*)');
  t.equal(run(p, 'c', 'm', 4, 4), 1, 'mknod of any char device (c *:* m)');
  t.equal(run(p, 'b', 'm', 8, 0), 1, 'mknod of any block device');
  t.equal(run(p, 'b', 'r', 8, 0), 0, 'reading a disk: denied');
  t.equal(run(p, 'c', 'r', 1, 1), 0, '/dev/mem: denied');
  t.equal(run(p, 'c', 'rwm', 1, 3), 1, 'rwm on /dev/null is in its rule');
});

t.test('a later rule wins; allow-all default with deny exceptions', async (t) => {
  const p = deviceProgram([{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]);
  t.equal(run(p, 'c', 'r', 1, 3), 1, 'read not denied');
  t.equal(run(p, 'c', 'rw', 1, 3), 0, 'any requested access that is denied denies');
  t.equal(run(p, 'b', 'rw', 8, 0), 1, 'everything else allowed');
  const q = deviceProgram([denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]);
  t.equal(run(q, 'c', 'r', 1, 3), 1);
  t.equal(run(q, 'c', 'w', 1, 3), 0, 'the later deny took w back');
  t.same(reduceRules([{ allow: true, access: 'rwm' }, denyAll]), { defaultAllow: false, exceptions: [] }, 'a wildcard resets');
});

t.test('no rules at all: deny everything (a fresh v2 cgroup has no default allow)', async (t) => {
  t.equal(run(deviceProgram([]), 'c', 'r', 1, 3), 0);
});
