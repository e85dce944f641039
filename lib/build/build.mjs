// Build step (npm run build / prepare): generates the ajv standalone
// validators from schemas/ (no schema compilation at run time) and bundles the
// CLI with esbuild into lib/_build/. Nothing here runs when tsrun runs.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'lib', '_build');
mkdirSync(out, { recursive: true });
// V8 code caches of the previous bundles (bin/tsrun writes them): stale now
for (const f of readdirSync(out)) if (f.endsWith('.v8cache')) rmSync(join(out, f), { force: true });

function writeAtomic(path, data) {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}

// 1. validators
const Ajv = require('ajv').default;
const standalone = require('ajv/dist/standalone').default;
// inlineRefs: false: each $ref a function, not its code copied at every use (124 -> 100 KB
// minified; reading and deserializing it is most of what loading it costs)
const ajv = new Ajv({ code: { source: true, lines: false, esm: false }, allErrors: false, strict: true, strictTypes: false, inlineRefs: false });
for (const f of ['defs.json', 'config-linux.json', 'config.schema.json', 'state.schema.json']) {
  ajv.addSchema(JSON.parse(readFileSync(join(root, 'schemas', f), 'utf8')));
}
const code = standalone(ajv, {
  config: 'https://tsrun.dev/schemas/config.schema.json',
  state: 'https://tsrun.dev/schemas/state.schema.json',
});
writeAtomic(join(out, 'validators.raw.cjs'), code);

// 2. bundles
const esbuild = require('esbuild');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};
// validators: bundled with ajv's small runtime helpers, loaded only by create
await esbuild.build({ ...common, minify: true, entryPoints: [join(out, 'validators.raw.cjs')], outfile: join(out, 'validators.cjs') });
// the CLI: everything of ours; koffi and the lazily loaded pieces stay outside
await esbuild.build({
  ...common,
  entryPoints: [join(root, 'lib', 'cli', 'main.ts')],
  outfile: join(out, 'tsrun.cjs'),
  external: ['koffi', './validators.cjs', './yargs-cli.cjs', './heavy.cjs'],
});
// create and run, with the plan builder, protocol and koffi glue
await esbuild.build({
  ...common,
  entryPoints: [join(root, 'lib', 'cli', 'heavy.ts')],
  outfile: join(out, 'heavy.cjs'),
  external: ['koffi', './validators.cjs', './syscalls.json'],
});
// seccomp's syscall tables: read only when a config has linux.seccomp
copyFileSync(join(root, 'lib', 'seccomp', 'syscalls.json'), join(out, 'syscalls.json'));
// the full yargs CLI: help, usage, completion and error messages only
// (yargs 18 is ESM and reads import.meta.url: give the CJS bundle one)
await esbuild.build({
  ...common,
  entryPoints: [join(root, 'lib', 'cli', 'yargs.ts')],
  outfile: join(out, 'yargs-cli.cjs'),
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});
