// Build step (npm run build / prepare), run by Bun: generates the ajv
// standalone validators from schemas/ (no schema compilation at run time),
// then bundles lib/cli/main.ts twice with Bun's bundler:
//   bin/tsrun               the command: one executable (Bun, code as bytecode)
//                           with the native stage, libtsrun and koffi embedded
//   lib/_build/tsrun.cjs    the same code for Node 20, run by bin/tsrun.js
// Nothing here runs when tsrun runs.
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { embeddedNative, moduleMarks, REGISTRY } from './plugins.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'lib', '_build');
mkdirSync(out, { recursive: true });

function writeAtomic(path, data) {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}

// 0. the protocol's numbers from native/include/tsrun.h (lib/protocol/abi.ts)
await import('./abi.mjs');

// 1. validators. inlineRefs: false: each $ref a function, not its code copied
// at every use (124 -> 100 KB minified)
const Ajv = require('ajv').default;
const standalone = require('ajv/dist/standalone').default;
const ajv = new Ajv({ code: { source: true, lines: false, esm: false }, allErrors: false, strict: true, strictTypes: false, inlineRefs: false });
for (const f of ['defs.json', 'config-linux.json', 'config.schema.json', 'state.schema.json']) {
  ajv.addSchema(JSON.parse(readFileSync(join(root, 'schemas', f), 'utf8')));
}
writeAtomic(join(out, 'validators.cjs'), standalone(ajv, {
  config: 'https://tsrun.dev/schemas/config.schema.json',
  state: 'https://tsrun.dev/schemas/state.schema.json',
}));

// 2. the bundles. One entry each: modules reached only through require() are
// evaluated when required, so state/kill never run the validators, the plan
// builder, koffi or yargs (the marks below let test/integration/lazy-load see it).
const common = {
  entrypoints: [join(root, 'lib', 'cli', 'main.ts')],
  minify: true,
  banner: REGISTRY,
  // yargs' config `extends` (unused by tsrun) is the one import.meta left in a CJS bundle
  define: { 'import.meta.resolve': 'undefined' },
};
const fail = (what, r) => {
  if (r.success) return;
  for (const m of r.logs) console.error(m);
  throw new Error(`${what}: bundling failed`);
};

const node = await Bun.build({
  ...common,
  // one CommonJS file: dynamic imports of bundled modules become lazy initialisers
  format: 'cjs',
  target: 'node',
  external: ['koffi', 'bun:ffi'],
  plugins: [moduleMarks(root)],
  outdir: out,
  naming: 'tsrun.cjs',
});
fail('lib/_build/tsrun.cjs', node);

// built under lib/_build and moved: the name inside is the one stack traces show
const exe = join(root, 'bin', 'tsrun');
const built = join(out, 'exe', 'tsrun');
rmSync(built, { force: true });
// ESM split at each dynamic import(): a verb reads and decodes only the
// chunks it imports (state: ~5.5 ms against 6.4 for one CommonJS file, hyperfine)
const compiled = await Bun.build({
  ...common,
  format: 'esm',
  splitting: true,
  target: 'bun',
  bytecode: true,
  compile: { outfile: built },
  plugins: [moduleMarks(root), embeddedNative(root, out)],
});
fail('bin/tsrun', compiled);
// copied into place, not renamed: the file Bun writes starts measurably
// slower (state: ~+1.5 ms of system time per call, hyperfine) than a plain
// sequential copy of it, which is also what an install makes
copyFileSync(built, exe + '.tmp');
renameSync(exe + '.tmp', exe);
rmSync(built, { force: true });
