// The verbs that build and launch a container (create, run) and everything
// only they need: ajv validators, the plan builder, the protocol, koffi.
// Bundled apart from the CLI so that state/kill/start/delete do not compile it.
export { create } from '../runtime/create';
export { run } from '../runtime/run';
export { exec } from '../runtime/exec';
