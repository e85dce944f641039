// Which Linux security modules can label a process on this host. Read only
// when a process asks for an AppArmor profile or an SELinux label.
import { existsSync, readFileSync } from 'node:fs';
import type { LsmState } from '../plan';
import type { Process } from '../spec/types';

export function lsmFor(p: Process | undefined): LsmState | undefined {
  if (!p?.apparmorProfile && !p?.selinuxLabel) return undefined;
  return hostLsms();
}

/** The LSMs that can label a process here (features, and the configs that ask for one). */
export function hostLsms(): LsmState {
  let active: string[] = [];
  try {
    active = readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',');
  } catch {
    /* no securityfs: none */
  }
  let apparmor = false;
  try {
    apparmor = active.includes('apparmor') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    /* not built in */
  }
  return { apparmor, selinux: active.includes('selinux') && existsSync('/sys/fs/selinux/enforce') };
}
