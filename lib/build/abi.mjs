// native/include/tsrun.h is the one source of the stage protocol: this
// writes its numbers as lib/protocol/abi.ts, run by the build before
// bundling (and by `node lib/build/abi.mjs --check`, the unit test's way of
// finding a header changed without the TypeScript following).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HEADER = join(root, 'native', 'include', 'tsrun.h');
const OUT = join(root, 'lib', 'protocol', 'abi.ts');

function pairs(text, re) {
  const out = [...text.matchAll(re)].map((m) => [m[1], m[2]]);
  if (!out.length) throw new Error(`tsrun.h: nothing matches ${re}`);
  return out;
}

function define(text, name) {
  const m = new RegExp(`^#define ${name} (\\w+)`, 'm').exec(text);
  if (!m) throw new Error(`tsrun.h: no #define ${name}`);
  return m[1].replace(/u$/, '');
}

/** The TypeScript for the header's text. */
export function generate(h) {
  const table = (name, list) => `export const ${name} = {\n${list.map(([k, v]) => `  ${k}: ${v},`).join('\n')}\n} as const;\n`;
  const hdrFields = /struct tsrun_msg_hdr \{([^}]*)\}/.exec(h);
  if (!hdrFields) throw new Error('tsrun.h: no struct tsrun_msg_hdr');
  const msgHdr = 4 * [...hdrFields[1].matchAll(/u?int32_t \w+;/g)].length;
  return `// Generated from native/include/tsrun.h by lib/build/abi.mjs: edit the header, not this.
export const ABI_VERSION = ${define(h, 'TSRUN_ABI_VERSION')};
export const PLAN_MAGIC = ${define(h, 'TSRUN_PLAN_MAGIC')};
export const MSG_MAX = ${define(h, 'TSRUN_MSG_MAX')};
export const MSG_HDR = ${msgHdr};
${table('T', pairs(h, /^\s*T_(\w+) = (\d+),/gm))}${table('M', pairs(h, /^\s*M_(\w+) = (\d+),/gm))}${table('TM', pairs(h, /^#define TM_(\w+) (0x[0-9a-fA-F]+)/gm))}${table('TT', pairs(h, /^#define TT_(\w+) (0x[0-9a-fA-F]+)/gm))}`;
}

const want = generate(readFileSync(HEADER, 'utf8'));
let have = '';
try {
  have = readFileSync(OUT, 'utf8');
} catch {
  /* first build */
}
if (process.argv.includes('--check')) {
  if (have !== want) {
    console.error('lib/protocol/abi.ts is not what native/include/tsrun.h says: run npm run build');
    process.exit(1);
  }
} else if (have !== want) {
  writeFileSync(OUT, want);
}
