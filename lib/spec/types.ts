// The parts of the runtime-spec config that tsrun reads (config.md,
// config-linux.md). The JSON Schema in schemas/ is the authority on shape.

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface IDMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Mount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
  uidMappings?: IDMapping[];
  gidMappings?: IDMapping[];
}

export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  args?: string[];
  env?: string[];
  cwd: string;
  user?: { uid?: number; gid?: number; umask?: number; additionalGids?: number[]; username?: string };
  capabilities?: Partial<Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>>;
  rlimits?: { type: string; soft: number; hard: number }[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
  ioPriority?: { class: string; priority?: number };
  scheduler?: {
    policy: string; nice?: number; priority?: number; flags?: string[]; runtime?: number; deadline?: number; period?: number;
  };
  execCPUAffinity?: { initial?: string; final?: string };
}

export interface Namespace {
  type: 'mount' | 'pid' | 'network' | 'uts' | 'ipc' | 'user' | 'cgroup' | 'time';
  path?: string;
}

export interface Device {
  type: 'c' | 'b' | 'u' | 'p';
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface Linux {
  namespaces?: Namespace[];
  uidMappings?: IDMapping[];
  gidMappings?: IDMapping[];
  timeOffsets?: Partial<Record<'monotonic' | 'boottime', { secs?: number; nanosecs?: number }>>;
  devices?: Device[];
  cgroupsPath?: string;
  rootfsPropagation?: string;
  resources?: Record<string, unknown>;
  sysctl?: Record<string, string>;
  seccomp?: LinuxSeccomp;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: { domain: string; flags?: string[] };
  intelRdt?: Record<string, unknown>;
  memoryPolicy?: Record<string, unknown>;
  netDevices?: Record<string, { name?: string }>;
}

export interface Spec {
  ociVersion: string;
  root: { path: string; readonly?: boolean };
  process?: Process;
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Partial<Record<'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop', Hook[]>>;
  annotations?: Record<string, string>;
  linux?: Linux;
}

export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: LinuxSeccompArg[] }[];
}
