// A container's cgroups once they exist, v1 or v2 behind one interface:
// its processes, freeze/thaw, signalling all of them, and the end (kill what
// is left, remove what the container created). lifecycle, state and exec use
// it; create makes the cgroups (cgroups/index) and limits them (resources).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { TsrunError } from '../errors';
import { sleep } from '../sleep';
import { cgroupPids, destroyCgroups } from './index';

const FREEZE_WAIT_MS = 5000;
const EMPTY_WAIT_MS = 2000;
const SIGKILL = 9;

/** Is the freezer file (v1 freezer.state or v2 cgroup.freeze) frozen or freezing? */
export function isFrozenFile(file: string): boolean {
  try {
    const v = readFileSync(file, 'utf8').trim();
    return v === 'FROZEN' || v === 'FREEZING' || v === '1';
  } catch {
    return false;
  }
}

export class ContainerCgroups {
  constructor(
    /** one directory per hierarchy */
    readonly paths: string[],
    /** freezer.state (v1) or cgroup.freeze (v2); none where neither exists */
    readonly freezer: string | undefined,
    /** the directories the container made (parents first): removed at the end */
    readonly created: string[],
  ) {}

  static of(st: { cgroupPaths: string[]; freezer?: string; cgroupCreated?: string[] }): ContainerCgroups {
    return new ContainerCgroups(st.cgroupPaths, st.freezer, st.cgroupCreated ?? []);
  }

  pids(): number[] {
    return cgroupPids(this.paths);
  }

  frozen(): boolean {
    return !!this.freezer && isFrozenFile(this.freezer);
  }

  /** Freeze or thaw, waiting until the kernel says it is done (v1 passes through FREEZING). */
  setFrozen(frozen: boolean): void {
    const file = this.freezer;
    if (!file) throw new TsrunError('cannot pause: no freezer cgroup (v1 freezer or v2 cgroup.freeze) on this host');
    const v2 = file.endsWith('cgroup.freeze');
    const want = v2 ? (frozen ? '1' : '0') : frozen ? 'FROZEN' : 'THAWED';
    try {
      writeFileSync(file, want);
    } catch (e) {
      throw new TsrunError(`${frozen ? 'freeze' : 'thaw'} ${file}`, { errno: (e as NodeJS.ErrnoException).code });
    }
    const deadline = Date.now() + FREEZE_WAIT_MS;
    for (;;) {
      let cur = '';
      try {
        cur = v2 ? /frozen (\d)/.exec(readFileSync(file.replace(/cgroup\.freeze$/, 'cgroup.events'), 'utf8'))?.[1] ?? '' : readFileSync(file, 'utf8').trim();
      } catch {
        return;
      }
      if (cur === want) return;
      if (Date.now() > deadline) throw new TsrunError(`${frozen ? 'freeze' : 'thaw'} ${file}: still ${cur} after ${FREEZE_WAIT_MS / 1000}s`);
      if (!v2 && frozen) writeFileSync(file, 'FROZEN');
      sleep(1);
    }
  }

  /** Thaw if frozen; a freezer that is gone or not ours is no error. */
  thawQuietly(): void {
    if (!this.freezer) return;
    try {
      writeFileSync(this.freezer, this.freezer.endsWith('cgroup.freeze') ? '0' : 'THAWED');
    } catch {
      /* not frozen or not ours */
    }
  }

  /**
   * Signal every process. SIGKILL on v2 goes through cgroup.kill; otherwise
   * the cgroup is frozen first so that nothing forks between reading
   * cgroup.procs and signalling (runc's walk), then thawed.
   */
  signalAll(sig: number): void {
    const v2kill = this.paths.map((p) => `${p}/cgroup.kill`).find((f) => sig === SIGKILL && existsSync(f));
    if (v2kill) {
      try {
        writeFileSync(v2kill, '1');
        return;
      } catch {
        /* fall back to the walk */
      }
    }
    // signal 0 only asks whether they exist: nothing to hold still
    const hold = sig !== 0 && !!this.freezer && !this.frozen();
    if (hold) {
      try {
        this.setFrozen(true);
      } catch {
        /* signal unfrozen rather than not at all */
      }
    }
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, sig);
        } catch {
          /* already gone */
        }
      }
    } finally {
      if (hold) this.setFrozen(false);
    }
  }

  /** The end: what is left in the cgroups killed, the created directories removed; returns those still busy. */
  destroy(): string[] {
    if (this.pids().length) {
      this.signalAll(SIGKILL);
      const deadline = Date.now() + EMPTY_WAIT_MS;
      while (this.pids().length && Date.now() < deadline) sleep(2);
    }
    return destroyCgroups(this.created);
  }
}
