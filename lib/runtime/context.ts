import type { Logger } from '../log';
import type { StateStore } from '../state';
import type { Sys } from '../sys';

/** What every use case gets: the state store, the logger, global options. */
export interface Context {
  store: StateStore;
  log: Logger;
  systemdCgroup: boolean;
  rootless: string;
  /** the native calls, bound on first use (only the verbs that spawn pay for it) */
  sys(): Sys;
}
