// What every conformance file shares: a sandbox, check() tagging each check
// with the spec clause it proves, and the pass/fail table per section
// printed at the end. Runtime-agnostic ($RUNTIME: tsrun, runc, crun).
import t, { type Test } from 'tap';
import { Sandbox, defaultConfig, runtimeName, sleepMs, type Config } from '../test/lib/harness';

export interface Suite {
  sb: Sandbox;
  /** a check: its spec clause, and a body whose assertions all pass */
  check(clause: string, name: string, body: (t: Test) => void | Promise<void>): void;
  /** run sh -c SCRIPT in a default container (changed by MOD) in the foreground */
  inside(script: string, mod?: (c: Config) => void): ReturnType<Sandbox['run']>;
  waitFor(fn: () => boolean, ms?: number): boolean;
}

export function suite(name: string): Suite {
  const sb = new Sandbox(name);
  const results: { clause: string; name: string; ok: boolean }[] = [];
  t.teardown(() => {
    const leaks = sb.cleanup();
    const bySection = new Map<string, { pass: number; fail: number }>();
    for (const r of results) {
      const sec = r.clause.split('#')[0]!;
      const e = bySection.get(sec) ?? { pass: 0, fail: 0 };
      if (r.ok) e.pass++;
      else e.fail++;
      bySection.set(sec, e);
    }
    const lines = [`conformance of ${runtimeName()}:`, 'section'.padEnd(22) + 'pass  fail'];
    for (const [s, e] of bySection) lines.push(s.padEnd(22) + String(e.pass).padStart(4) + String(e.fail).padStart(6));
    for (const r of results) lines.push(`${r.ok ? 'PASS' : 'FAIL'}  ${r.clause.padEnd(40)} ${r.name}`);
    process.stdout.write(lines.map((l) => `# ${l}`).join('\n') + '\n');
    if (leaks.length) throw new Error(`leaked: ${leaks.join(', ')}`);
  });
  return {
    sb,
    check(clause, what, body) {
      t.test(`[${clause}] ${what}`, async (tt) => {
        await body(tt);
        results.push({ clause, name: what, ok: tt.passing() });
      });
    },
    inside(script, mod) {
      const c = defaultConfig(['sh', '-c', script]);
      mod?.(c);
      return sb.run(c);
    },
    waitFor(fn, ms = 5000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (fn()) return true;
        sleepMs(10);
      }
      return fn();
    },
  };
}
