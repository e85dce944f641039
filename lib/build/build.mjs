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
// The bundles bin/tsrun loads are written already wrapped in the CommonJS
// function (bin/tsrun compiles them as they are): wrapping at load time made
// V8 copy every source once more (~215 KB per create), enough to cost a
// create a young-generation GC (~3.5 ms measured with --trace-gc). They are
// for bin/tsrun only: a plain require() of them defines nothing.
const WRAPPED = { banner: { js: '(function (exports, require, module, __filename, __dirname) {' }, footer: { js: '\n})' } };
/** One of the bundles bin/tsrun loads: pre-wrapped, koffi and the lazily loaded pieces outside. */
const bundle = (entry, name, external, extra = {}) =>
  esbuild.build({ ...common, entryPoints: [join(root, 'lib', ...entry)], outfile: join(out, name), ...WRAPPED, external: ['koffi', ...external], ...extra });
// the CLI: the lifecycle verbs (state, start, kill, delete, pause, ...) and the dispatch
await bundle(['cli', 'main.ts'], 'tsrun.cjs', ['./yargs-cli.cjs', './heavy.cjs', './exec.cjs', './admin.cjs']);
// create and run, with the plan builder, protocol, koffi glue and the validators
// (with ajv's small runtime helpers): only create needs them, and it needs the
// rest too. One read, one code cache; and at ~165 KB its source string is above
// V8's 128 KB regular-object limit, so it lives in large-object space and
// young-generation GCs never copy it (with the validators apart, every create
// paid one ~3 ms scavenge: --trace-gc).
await bundle(['cli', 'heavy.ts'], 'heavy.cjs', ['./syscalls.json'], {
  plugins: [{
    name: 'validators',
    setup(b) {
      b.onResolve({ filter: /^\.\/validators\.cjs$/ }, () => ({ path: join(out, 'validators.raw.cjs') }));
    },
  }],
});
// exec (the verb of every `kubectl exec` and exec probe): the stage glue
// without the validators and create (24 KB instead of heavy.cjs's 164 KB)
await bundle(['runtime', 'exec.ts'], 'exec.cjs', ['./syscalls.json']);
// update, events, features, spec
await bundle(['cli', 'admin.ts'], 'admin.cjs', ['./syscalls.json']);
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
