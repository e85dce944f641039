import type { Logger } from '../log';
import type { StateStore } from '../state';

/** What every use case gets: the state store, the logger, global options. */
export interface Context {
  store: StateStore;
  log: Logger;
  systemdCgroup: boolean;
  rootless: string;
}
