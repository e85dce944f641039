// The verbs that build and launch a container (create, run) and everything
// only they need: ajv validators, the plan builder, the protocol, koffi.
// Bundled apart from the CLI so that state/kill/start/delete do not compile it;
// exec has its own bundle (lib/_build/exec.cjs, entry lib/runtime/exec.ts)
// without the validators and create's code.
export { create } from '../runtime/create';
export { run } from '../runtime/run';
