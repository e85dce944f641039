// The foreign-function layer under lib/sys: functions are declared once, as
// C prototypes, and bound by the engine's own means. Bun: bun:ffi (built in,
// nothing to load: the compiled executable no longer carries koffi). Node:
// koffi. Strings go in as NUL-terminated bytes, buffers and Int32Arrays as
// pointers to their memory (out parameters are written in place).

export type Arg = number | string | Uint8Array | Int32Array;
export type NativeFn = (...args: Arg[]) => number;

export interface Ffi {
  /** bind DECLS ("int name(int a, const char *b)") of the library at PATH */
  load(path: string, decls: string[]): Record<string, NativeFn>;
  /** errno of the last call, where the engine can tell (koffi); else 0 */
  errno(): number;
}

/** The part of koffi's API used here. */
export interface Koffi {
  load(path: string): { func(decl: string): (...args: unknown[]) => number };
  errno(): number;
}

interface Proto {
  name: string;
  ret: 'int' | 'void';
  args: ('i32' | 'u32' | 'str' | 'ptr')[];
}

/** "int tsrun_spawn(int stage, const uint8_t *plan, _Out_ int *out)" -> name and kinds. */
export function parseProto(decl: string): Proto {
  const m = /^\s*(int|void)\s+(\w+)\s*\((.*)\)\s*$/.exec(decl);
  if (!m) throw new Error(`bad native declaration: ${decl}`);
  const params = m[3]!.trim() === 'void' || m[3]!.trim() === '' ? [] : m[3]!.split(',');
  const args = params.map((p) => {
    const t = p.replace(/_Out_|_Inout_/g, '').trim();
    if (/\bchar\s*\*/.test(t)) return 'str' as const;
    if (t.includes('*')) return 'ptr' as const;
    if (/\b(unsigned|uint32_t)\b/.test(t)) return 'u32' as const;
    if (/\bint\b/.test(t)) return 'i32' as const;
    throw new Error(`unsupported parameter type in ${decl}: ${p}`);
  });
  return { name: m[2]!, ret: m[1] as Proto['ret'], args };
}

export function koffiFfi(k: Koffi): Ffi {
  return {
    load(path, decls) {
      const lib = k.load(path);
      const out: Record<string, NativeFn> = {};
      for (const d of decls) out[parseProto(d).name] = lib.func(d) as NativeFn;
      return out;
    },
    errno: () => k.errno(),
  };
}

interface BunFfiModule {
  dlopen(path: string, syms: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, (...a: unknown[]) => number> };
}

export function bunFfi(): Ffi {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ffi = require('bun:ffi') as BunFfiModule;
  const TYPE = { i32: 'i32', u32: 'u32', str: 'ptr', ptr: 'ptr' } as const;
  return {
    load(path, decls) {
      const protos = decls.map(parseProto);
      const syms: Record<string, { args: string[]; returns: string }> = {};
      for (const p of protos) syms[p.name] = { args: p.args.map((a) => TYPE[a]), returns: p.ret === 'void' ? 'void' : 'i32' };
      const lib = ffi.dlopen(path, syms).symbols;
      const out: Record<string, NativeFn> = {};
      for (const p of protos) {
        const f = lib[p.name]!;
        const strs = p.args.map((a) => a === 'str');
        // bun:ffi takes a TypedArray for a pointer: strings are encoded, with their NUL
        out[p.name] = (...args) => f(...args.map((v, i) => (strs[i] && typeof v === 'string' ? Buffer.from(v + '\0') : v)));
      }
      return out;
    },
    errno: () => 0,
  };
}
