// linux.netDevices (spec 1.3): which host interfaces move into the
// container's network namespace, under which names. Pure; the move itself
// is the runtime's (lib/sys netdevMove), once the namespace exists.
import { TsrunError } from '../errors';

export interface PlanNetDevice {
  /** the interface in the runtime's network namespace */
  host: string;
  /** its name in the container's ("eth%d": the kernel picks the first free) */
  name: string;
}

const IFNAMSIZ = 16;

/** The kernel's dev_valid_name: 1-15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function validIfName(n: string): boolean {
  return n.length > 0 && Buffer.byteLength(n) < IFNAMSIZ && n !== '.' && n !== '..' && !/[/:\s]/.test(n);
}

export function planNetDevices(devs: Record<string, { name?: string }> | undefined, namespaces: { type: string; path?: string }[]): PlanNetDevice[] {
  const P = 'config.json: linux.netDevices';
  const list = Object.entries(devs ?? {});
  if (!list.length) return [];
  if (!namespaces.some((n) => n.type === 'network')) {
    throw new TsrunError(`${P}: the container has no network namespace of its own (linux.namespaces has no network entry)`);
  }
  const names = new Set<string>();
  return list.map(([host, d]) => {
    const name = d?.name || host;
    if (!validIfName(host)) throw new TsrunError(`${P}: ${JSON.stringify(host)} is not an interface name`);
    if (!validIfName(name)) throw new TsrunError(`${P}.${host}.name: ${JSON.stringify(name)} is not an interface name`);
    if (!name.includes('%') && names.has(name)) throw new TsrunError(`${P}.${host}.name: ${name} is given to two interfaces`);
    names.add(name);
    return { host, name };
  });
}
