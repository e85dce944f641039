/** The runtime-spec version tsrun implements: state, features, spec and --version say it. */
export const SPEC_VERSION = '1.3.0';
