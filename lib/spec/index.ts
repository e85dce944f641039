// Load config.json: parse (errors name the file and position), validate with
// the ajv validator generated at build time (errors name the JSON path and the
// rule), then the semantic checks the schema cannot express. Reads only.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, sysError } from '../errors';
import type { Spec } from './types';
import { CAPS, RLIMITS } from './tables';

export type { Spec } from './types';

export interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: Record<string, unknown>;
}
export type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

export interface Warn {
  (msg: string): void;
}

/** "/process/user/uid" -> "process.user.uid"; array indexes as [N]. */
export function jsonPath(instancePath: string): string {
  if (!instancePath) return '(root)';
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

export function describeAjvError(e: AjvError): string {
  const path = jsonPath(e.instancePath);
  let msg = e.message ?? e.keyword;
  if (e.keyword === 'enum' && e.params?.allowedValues) {
    msg = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (e.keyword === 'required') return `${path}: ${msg} (required)`;
  return `${path}: ${msg} (${e.keyword})`;
}

function positionOf(text: string, msg: string): string {
  const m = /position (\d+)/.exec(msg);
  if (!m) return '';
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return ` at line ${line} column ${col}`;
}

export function parseSpec(text: string, file: string, validate: Validator): Spec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const m = (e as Error).message;
    throw new TsrunError(`${file}: invalid JSON${positionOf(text, m)}: ${m.replace(/ in JSON at position \d+.*$/, '')}`);
  }
  if (!validate(data)) {
    const err = validate.errors?.[0];
    throw new TsrunError(`${file}: ${err ? describeAjvError(err) : 'does not match the schema'}`);
  }
  return data as Spec;
}

export function loadSpec(bundle: string, validate: Validator): Spec {
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TsrunError(`JSON specification file ${file} not found`);
    }
    throw sysError(`read ${file}`, e);
  }
  return parseSpec(text, 'config.json', validate);
}

/** Semantic checks: each throws a TsrunError naming the JSON path. */
type Check = (spec: Spec, warn: Warn) => void;

function checkProcess(spec: Spec): void {
  const p = spec.process;
  if (!p) throw new TsrunError('config.json: process: required to create a container');
  if (!p.args || p.args.length === 0) throw new TsrunError('config.json: process.args: must not be empty');
  if (!p.cwd.startsWith('/')) {
    throw new TsrunError(`config.json: process.cwd: must be an absolute path, got ${JSON.stringify(p.cwd)}`);
  }
}

function checkNamespaces(spec: Spec): void {
  const linux = spec.linux ?? {};
  const seen = new Set<string>();
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (seen.has(ns.type)) throw new TsrunError(`config.json: linux.namespaces[${i}]: duplicate namespace type ${ns.type}`);
    seen.add(ns.type);
    if (ns.path !== undefined && !ns.path.startsWith('/')) {
      throw new TsrunError(`config.json: linux.namespaces[${i}].path: must be absolute, got ${JSON.stringify(ns.path)}`);
    }
  }
  const newUser = (linux.namespaces ?? []).some((n) => n.type === 'user' && !n.path);
  if (newUser && !(linux.uidMappings?.length && linux.gidMappings?.length)) {
    throw new TsrunError('config.json: linux.uidMappings/gidMappings: a new user namespace needs both uid and gid mappings');
  }
  if (!seen.has('user') && (linux.uidMappings?.length || linux.gidMappings?.length)) {
    throw new TsrunError('config.json: linux.uidMappings: mappings given without a user namespace');
  }
  const newOrJoined = (t: string) => seen.has(t);
  if (spec.hostname && !newOrJoined('uts')) {
    throw new TsrunError('config.json: hostname: unable to set hostname without a private UTS namespace');
  }
  if (spec.domainname && !newOrJoined('uts')) {
    throw new TsrunError('config.json: domainname: unable to set domainname without a private UTS namespace');
  }
  if (linux.timeOffsets && !newOrJoined('time')) {
    throw new TsrunError('config.json: linux.timeOffsets: time offsets given without a time namespace');
  }
}

function checkMountNamespace(spec: Spec): void {
  const linux = spec.linux ?? {};
  // no new mount namespace (inherited, or joined by path): the root is a
  // chroot, and whatever would be mounted would land in a namespace that is
  // not the container's and outlive it, so it is refused
  if (!(linux.namespaces ?? []).some((n) => n.type === 'mount' && !n.path)) {
    const why = 'needs a mount namespace of the container\'s own (this one is inherited or joined by path, and would keep what is done to it)';
    if (spec.mounts?.length) throw new TsrunError(`config.json: mounts: ${why}`);
    if (linux.maskedPaths?.length) throw new TsrunError(`config.json: linux.maskedPaths: ${why}`);
    if (linux.readonlyPaths?.length) throw new TsrunError(`config.json: linux.readonlyPaths: ${why}`);
    if (linux.devices?.length) throw new TsrunError(`config.json: linux.devices: ${why}`);
    if (spec.root?.readonly) throw new TsrunError(`config.json: root.readonly: ${why}`);
    if (linux.rootfsPropagation) throw new TsrunError(`config.json: linux.rootfsPropagation: ${why}`);
  }
}

function checkRlimits(spec: Spec): void {
  const p = spec.process!;
  const rl = new Set<string>();
  for (const [i, r] of (p.rlimits ?? []).entries()) {
    if (!(r.type in RLIMITS)) throw new TsrunError(`config.json: process.rlimits[${i}].type: unknown rlimit type ${r.type}`);
    if (rl.has(r.type)) throw new TsrunError(`config.json: process.rlimits[${i}]: duplicate rlimit type ${r.type}`);
    rl.add(r.type);
    if (r.soft > r.hard) throw new TsrunError(`config.json: process.rlimits[${i}]: soft limit ${r.soft} exceeds hard limit ${r.hard}`);
  }
}

function checkCapabilities(spec: Spec, warn: Warn): void {
  const p = spec.process!;
  for (const [set, names] of Object.entries(p.capabilities ?? {})) {
    for (const n of names ?? []) {
      if (!CAPS.includes(n)) warn(`config.json: process.capabilities.${set}: unknown capability ${JSON.stringify(n)} ignored`);
    }
  }
}

// config.md: a relative destination MUST be read as relative to "/" (deprecated)
function checkMounts(spec: Spec, warn: Warn): void {
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (!m.destination.startsWith('/')) {
      warn(`config.json: mounts[${i}].destination ${JSON.stringify(m.destination)} is relative (deprecated): taken as relative to "/"`);
    }
  }
}

function checkDevices(spec: Spec, warn: Warn): void {
  const linux = spec.linux ?? {};
  for (const [i, d] of (linux.devices ?? []).entries()) {
    if (!d.path.startsWith('/dev/')) {
      throw new TsrunError(`config.json: linux.devices[${i}].path: must be under /dev, got ${JSON.stringify(d.path)}`);
    }
    if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new TsrunError(`config.json: linux.devices[${i}]: major and minor are required for type ${d.type}`);
    }
  }
  // runc's reading of access: r, w and m count, other letters mean nothing; "" is refused
  for (const [i, r] of ((linux.resources?.devices ?? []) as { access?: string }[]).entries()) {
    if (r.access === undefined) continue;
    if (r.access === '') throw new TsrunError(`config.json: linux.resources.devices[${i}].access: cannot be empty`);
    const other = [...new Set(r.access.replace(/[rwm]/g, ''))].join('');
    if (other) warn(`config.json: linux.resources.devices[${i}].access ${JSON.stringify(r.access)}: ${JSON.stringify(other)} ignored (only r, w and m are permissions)`);
  }
}

function checkHooks(spec: Spec): void {
  for (const [k, hooks] of Object.entries(spec.hooks ?? {})) {
    for (const [i, h] of (hooks ?? []).entries()) {
      if (!h.path.startsWith('/')) throw new TsrunError(`config.json: hooks.${k}[${i}].path: must be absolute, got ${JSON.stringify(h.path)}`);
    }
  }
}

function checkSysctls(spec: Spec): void {
  const linux = spec.linux ?? {};
  const nss = linux.namespaces ?? [];
  for (const k of Object.keys(linux.sysctl ?? {})) {
    if (k.includes('/') || k.includes('..')) throw new TsrunError(`config.json: linux.sysctl: invalid key ${JSON.stringify(k)}`);
    const why = sysctlRefusal(k, nss, spec.hostname !== undefined);
    if (why) throw new TsrunError(`config.json: linux.sysctl: ${why}`);
  }
}

/** The semantic checks past the schema, in order: the first failure is the error. */
const CHECKS: Check[] = [
  checkProcess, checkNamespaces, checkMountNamespace, checkRlimits, checkCapabilities, checkMounts, checkDevices, checkHooks, checkSysctls,
];

export function checkSpec(spec: Spec, warn: Warn): void {
  for (const c of CHECKS) c(spec, warn);
}

const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

/**
 * runc's rule: a sysctl is written only where it cannot touch the host, in
 * a namespace of the container's own. Returns why not, or undefined.
 */
function sysctlRefusal(k: string, nss: { type: string; path?: string }[], hasHostname: boolean): string | undefined {
  const ns = (t: string) => nss.find((n) => n.type === t);
  if (IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.')) {
    return ns('ipc') ? undefined : `sysctl "${k}" is not allowed in the hosts ipc namespace`;
  }
  if (k.startsWith('net.')) {
    const n = ns('network');
    if (!n) return `sysctl "${k}" is not allowed in the hosts network namespace`;
    if (n.path && sameFile(n.path, '/proc/self/ns/net')) return `sysctl "${k}" is not allowed in the hosts network namespace`;
    return undefined;
  }
  if (ns('uts')) {
    if (k === 'kernel.domainname') return undefined;
    if (k === 'kernel.hostname' && hasHostname) return `sysctl "${k}" is not allowed as it conflicts with the OCI "hostname" field`;
    if (k === 'kernel.hostname') return undefined;
  }
  return `sysctl "${k}" is not in a separate kernel namespace`;
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}
