// The yargs CLI, built from the same table as the fast parser. Loaded only
// for help, usage, completion and for command lines the fast parser refuses,
// so its start-up cost is not paid by create/start/state/kill/delete.
import yargs from 'yargs';
import type { Argv, Options } from 'yargs';
import { commands, globalFlags, verbIndex, type FlagDef } from './commands';

function opt(f: FlagDef): Options {
  const o: Options = { describe: f.desc, hidden: f.hidden, type: f.type === 'array' ? 'array' : f.type };
  if (f.alias) o.alias = f.alias;
  if (f.default !== undefined) o.default = f.default;
  return o;
}

export function buildYargs(argv: string[]): Argv {
  let y = yargs(argv)
    .scriptName('tsrun')
    .usage(
      'tsrun: an Open Container Initiative runtime (a runc clone in TypeScript)\n\n' +
        'Usage: $0 [global options] command [command options] [arguments...]',
    )
    .strict()
    .exitProcess(false)
    .parserConfiguration({ 'camel-case-expansion': true, 'strip-dashed': false, 'halt-at-non-option': false, 'boolean-negation': false })
    .wrap(Math.min(110, (yargs as unknown as { terminalWidth?: () => number }).terminalWidth?.() ?? 100))
    .completion('completion', 'generate a bash/zsh completion script')
    .help('help')
    .alias('help', 'h')
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' })
    .demandCommand(1, 'a command is required')
    .recommendCommands();
  for (const g of globalFlags) y = y.option(g.name, { ...opt(g), global: true });
  for (const c of commands) {
    const pos = c.positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`)).join(' ');
    y = y.command(`${c.name}${pos ? ' ' + pos : ''}`, c.desc, (cy) => {
      for (const f of c.flags) cy = cy.option(f.name, opt(f));
      for (const p of c.positionals) cy = cy.positional(p.name, { describe: p.desc, type: 'string' });
      return cy;
    });
  }
  y = y.command('help [command]', 'shows a list of commands or help for one command', () => {}, () => {});
  return y;
}

/** Returns tsrun's exit status. `reason`: why the fast parser refused argv. */
export function runYargs(argv: string[], versionText: string, reason = ''): number {
  if (argv.includes('--version') || argv.includes('-v')) {
    process.stdout.write(versionText);
    return 0;
  }
  // "tsrun help VERB" = "tsrun VERB --help"
  const at = verbIndex(argv);
  if (at >= 0 && argv[at] === 'help') argv = [...argv.slice(0, at), ...(argv[at + 1] ? [argv[at + 1]!] : []), '--help'];
  // an unknown command fails, help or not: exit 3, as runc's "No help topic"
  const verb = argv.includes('--get-yargs-completions') ? undefined : argv[verbIndex(argv)];
  if (verb !== undefined && verb !== 'completion' && !commands.some((c) => c.name === verb)) {
    process.stderr.write(`tsrun: unknown command ${JSON.stringify(verb)}\n`);
    return 3;
  }
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const completion = argv.includes('completion') || argv.includes('--get-yargs-completions');
  if (reason && !wantsHelp && !completion) {
    // usage of the verb (or the whole CLI), then the one error line
    const verb = commands.find((c) => argv.includes(c.name));
    const y = buildYargs(verb ? [verb.name] : []);
    y.showHelp((s: string) => process.stderr.write(s + '\n'));
    process.stderr.write(`\ntsrun: ${reason}\n`);
    return 1;
  }
  let code = 0;
  buildYargs(argv)
    .fail((msg, err, yy) => {
      yy.showHelp('error');
      process.stderr.write(`\ntsrun: ${msg ?? err?.message}\n`);
      code = 1;
    })
    .parseSync();
  return code;
}
