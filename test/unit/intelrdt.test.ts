// linux.intelRdt's rules (config-linux.md#intelrdt) against a fake resctrl directory.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyRdt, combinedSchema, planRdt, removeRdt, resctrlRoot } from '../../lib/intelrdt';

function fakeResctrl(t: { teardown(f: () => void): void }): string {
  const root = mkdtempSync(join(tmpdir(), 'tsrun-resctrl-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'schemata'), 'L3:0=7ff;1=7ff\nMB:0=100;1=100\n');
  return root;
}

t.test('resctrl is found in mountinfo, or not', async (t) => {
  t.equal(resctrlRoot('36 25 0:31 / /sys/fs/resctrl rw,relatime shared:9 - resctrl resctrl rw\n'), '/sys/fs/resctrl');
  t.equal(resctrlRoot('22 1 0:21 / / rw - ext4 /dev/sda rw\n'), undefined);
});

t.test('l3CacheSchema and memBwSchema combine as the spec says', async (t) => {
  t.equal(combinedSchema({ l3CacheSchema: 'L3:0=f0', memBwSchema: 'MB:0=20' }), 'L3:0=f0\nMB:0=20');
  t.equal(combinedSchema({ l3CacheSchema: 'L3:0=f0\nMB:0=50', memBwSchema: 'MB:0=20' }), 'L3:0=f0\nMB:0=20', 'an MB: line in l3CacheSchema gives way to memBwSchema');
  t.equal(combinedSchema({ l3CacheSchema: 'L3:0=f0\nMB:0=50' }), 'L3:0=f0\nMB:0=50', 'kept without memBwSchema');
  t.equal(combinedSchema({ memBwSchema: 'MB:0=20' }), 'MB:0=20');
  t.equal(combinedSchema({}), undefined);
  t.throws(() => combinedSchema({ memBwSchema: 'L3:0=1' }), /memBwSchema: must start with "MB:"/);
  t.throws(() => combinedSchema({ memBwSchema: 'MB:0=1\nMB:1=2' }), /hold no newline/);
});

t.test('no closID: a directory named after the container, made and removed by tsrun', async (t) => {
  const root = fakeResctrl(t);
  const plan = planRdt({ l3CacheSchema: 'L3:0=f0', schemata: 'L2:0=f' }, 'c1', root);
  t.same(plan, { dir: join(root, 'c1'), writes: ['L3:0=f0', 'L2:0=f'], create: true }, 'the schemata field is written last');
  applyRdt(plan, 4242);
  t.equal(readFileSync(join(root, 'c1', 'tasks'), 'utf8'), '4242', 'the container process in tasks');
  t.equal(readFileSync(join(root, 'c1', 'schemata'), 'utf8'), 'L2:0=f\n', 'last write wins in a plain file; the kernel merges them');
  // a fake dir keeps the files the kernel would provide: clear them to remove it
  for (const f of ['tasks', 'schemata']) rmSync(join(root, 'c1', f));
  removeRdt(plan.dir);
  t.notOk(existsSync(join(root, 'c1')));
});

t.test('closID: an existing CLOS is compared with, a missing one made, a bare one must exist', async (t) => {
  const root = fakeResctrl(t);
  mkdirSync(join(root, 'gold'));
  writeFileSync(join(root, 'gold', 'schemata'), '    L3:0=0f0;1=7ff\n    MB:0=20;1=100\n');
  t.same(planRdt({ closID: 'gold', l3CacheSchema: 'L3:0=0f0;1=7ff' }, 'c2', root), { dir: join(root, 'gold'), writes: ['L3:0=0f0;1=7ff'], create: false });
  t.throws(() => planRdt({ closID: 'gold', l3CacheSchema: 'L3:0=fff' }, 'c2', root), /schemata of the existing CLOS gold do not match/);
  t.same(planRdt({ closID: 'silver', memBwSchema: 'MB:0=10' }, 'c2', root).create, true, 'a CLOS named with schemata is made');
  t.same(planRdt({ closID: 'gold' }, 'c2', root), { dir: join(root, 'gold'), writes: [], create: false }, 'pre-configured: joined as it is');
  t.throws(() => planRdt({ closID: 'bronze' }, 'c2', root), /the CLOS bronze does not exist/);
  t.throws(() => planRdt({ closID: '../x' }, 'c2', root), /closID: "\.\.\/x" is not a directory name/);
  t.throws(() => planRdt({ enableCMT: true }, 'c2', root), /enableCMT: RDT monitoring is not implemented/);
});
