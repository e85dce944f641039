#!/usr/bin/env node
// Regenerates lib/seccomp/syscalls.json, the syscall name -> number tables
// the seccomp compiler uses, from Linux uapi headers (Debian's
// linux-libc-dev for each architecture):
//
//   apt-get download linux-libc-dev:armhf linux-libc-dev:arm64   (after dpkg --add-architecture)
//   dpkg-deb -x linux-libc-dev_*_armhf.deb armhf; dpkg-deb -x linux-libc-dev_*_arm64.deb arm64
//   node lib/build/syscalls.mjs /usr/include ./armhf/usr/include ./arm64/usr/include
//
// x86_64, x86 (i386) and x32 come from the amd64 headers; arm (EABI) and
// aarch64 through cpp, so the headers' own macros decide. Syscalls added
// after the headers' kernel are appended from LATER: since Linux 5.1 (424)
// every architecture here numbers new syscalls the same way.
// test/unit/seccomp.test.ts checks the result is complete against the
// host's headers.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const [amd64 = '/usr/include', armhf, arm64] = process.argv.slice(2);
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'seccomp', 'syscalls.json');

/** #define __NR_x value lines -> {name: number}, resolving macro references and + arithmetic. */
function fromDefines(text, prefix = '__NR_') {
  const raw = new Map();
  for (const m of text.matchAll(/^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*$/gm)) raw.set(m[1], m[2]);
  const memo = new Map();
  const value = (expr, depth = 0) => {
    if (depth > 20) return NaN;
    const e = expr.replace(/\b[A-Za-z_]\w*\b/g, (id) => {
      if (!raw.has(id)) return 'NaN';
      if (!memo.has(id)) memo.set(id, value(raw.get(id), depth + 1));
      return String(memo.get(id));
    }).replace(/\b(\d+)U?L*\b/g, '$1');
    if (!/^[\d\s()+\-x|a-fA-F]*$/.test(e)) return NaN;
    try {
      return Number(Function(`return (${e})`)());
    } catch {
      return NaN;
    }
  };
  const r = {};
  for (const [k, v] of raw) {
    if (!k.startsWith(prefix) || k === '__NR_syscalls' || k.startsWith('__NR3264')) continue;
    if (/^(BASE|SYSCALL_BASE|SYSCALL_MASK|OABI_SYSCALL_BASE)$/.test(k.slice(prefix.length))) continue;
    const n = value(v);
    if (Number.isInteger(n) && n >= 0) r[k.slice(prefix.length)] = n;
  }
  return r;
}

function cppDefines(include, header, defs) {
  const r = spawnSync('cpp', ['-dM', '-nostdinc', '-undef', ...defs, ...include.map((i) => `-I${i}`), '-x', 'c', '-'], {
    input: `#include <${header}>\n`, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`cpp ${header}: ${r.stderr}`);
  return r.stdout;
}

const tables = {};
const asm = join(amd64, 'x86_64-linux-gnu', 'asm');
tables.x86_64 = fromDefines(readFileSync(join(asm, 'unistd_64.h'), 'utf8'));
tables.x86 = fromDefines(readFileSync(join(asm, 'unistd_32.h'), 'utf8'));
// x32 numbers carry __X32_SYSCALL_BIT; the table keeps them without it
const x32 = fromDefines(readFileSync(join(asm, 'unistd_x32.h'), 'utf8').replace(/__X32_SYSCALL_BIT/g, '0'));
tables.x32 = x32;
if (armhf) {
  tables.arm = fromDefines(cppDefines([armhf, join(armhf, 'arm-linux-gnueabihf')], 'asm/unistd.h', ['-D__ARM_EABI__', '-D__arm__']));
  // ARM private syscalls (breakpoint, cacheflush, usr26, usr32, set_tls, get_tls)
  Object.assign(tables.arm, fromDefines(cppDefines([armhf, join(armhf, 'arm-linux-gnueabihf')], 'asm/unistd.h', ['-D__ARM_EABI__', '-D__arm__']), '__ARM_NR_'));
}
if (arm64) {
  tables.aarch64 = fromDefines(cppDefines([arm64, join(arm64, 'aarch64-linux-gnu')], 'asm/unistd.h', ['-D__aarch64__', '-D__LP64__', '-D__BITS_PER_LONG=64']));
}

// Uniform numbers of syscalls newer than the headers (Linux >= 5.1 numbering).
const LATER = {
  cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455, futex_requeue: 456,
  statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461,
  mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465, removexattrat: 466, open_tree_attr: 467,
  file_getattr: 468, file_setattr: 469,
};
for (const t of Object.values(tables)) {
  for (const [k, v] of Object.entries(LATER)) if (!(k in t)) t[k] = v;
}
const sorted = {};
for (const [arch, t] of Object.entries(tables)) {
  sorted[arch] = Object.fromEntries(Object.entries(t).sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])));
}
writeFileSync(out, JSON.stringify(sorted) + '\n');
for (const [a, t] of Object.entries(sorted)) console.log(`${a}: ${Object.keys(t).length} syscalls, max ${Math.max(...Object.values(t))}`);
