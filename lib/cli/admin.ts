// The verbs that are neither the container lifecycle nor create/exec:
// update, events, features, spec. Bundled apart (lib/_build/admin.cjs) so that
// the CLI bundle every state/start/kill/delete reads stays small.
export { update } from '../runtime/update';
export { events } from '../runtime/events';
export { features } from '../runtime/features';
export { writeSpec } from '../runtime/spec';
