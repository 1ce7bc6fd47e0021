import type { Readable, Writable } from "node:stream";
import type { Endpoint } from "./connection.ts";

/**
 * Everything vm asks of a container engine. The Docker API implementation is the only code that talks to
 * an engine; everything else takes an `Engine`, so pure logic can be unit-tested with a fake.
 */
export interface Engine {
  readonly endpoint: Endpoint;
  info(): Promise<EngineInfo>;

  build(options: BuildOptions): Promise<string>;
  inspectImage(ref: string): Promise<ImageDetails | undefined>;
  listImages(labels: Record<string, string>): Promise<ImageSummary[]>;
  removeImage(ref: string, options?: { force?: boolean }): Promise<void>;
  pullImage(ref: string, onProgress?: (line: string) => void): Promise<void>;

  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds?: number): Promise<void>;
  removeContainer(id: string, options?: { force?: boolean }): Promise<void>;
  inspectContainer(id: string): Promise<ContainerDetails | undefined>;
  listContainers(labels: Record<string, string>): Promise<ContainerSummary[]>;

  exec(containerId: string, options: ExecOptions): Promise<number>;
  logs(containerId: string, options: LogsOptions): Promise<void>;

  ensureVolume(name: string, labels: Record<string, string>): Promise<void>;
  listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]>;
  removeVolume(name: string): Promise<void>;

  close(): void;
}

export interface EngineInfo {
  serverVersion: string;
  apiVersion: string;
  os: string;
  architecture: string;
  /** "containerd" when the engine keeps images in containerd's store (Docker 25+ option), else "classic". */
  imageStore: "containerd" | "classic";
  storageDriver: string;
  rootDir: string;
  cpus: number;
  memoryBytes: number;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageDetails {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  size: number;
  created: string;
  platform: Platform;
  user: string;
  workingDir: string;
}

export interface ImageSummary {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  size: number;
}

export interface BuildOptions {
  /** A tar stream of the build context. */
  context: Readable;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  onOutput: (text: string) => void;
}

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  workingDir: string;
  user?: string;
  hostname: string;
  entrypoint: string[];
  cmd: string[];
  binds: string[];
  volumes: { name: string; target: string; readOnly: boolean }[];
  ports: { host: number; container: number; protocol: "tcp" | "udp"; hostIp?: string }[];
  memoryBytes?: number;
  nanoCpus?: number;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  labels: Record<string, string>;
  created: number;
}

export interface ContainerDetails {
  id: string;
  name: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  state: { status: string; running: boolean; paused: boolean; startedAt: string; exitCode: number };
  created: string;
  memoryBytes: number;
  nanoCpus: number;
  mounts: { type: string; source: string; destination: string; name?: string }[];
  ports: { container: string; hostIp: string; hostPort: string }[];
}

export interface ExecOptions {
  cmd: string[];
  user?: string;
  workingDir?: string;
  env?: Record<string, string>;
  tty: boolean;
  /** Forwarded to the process; end of this stream closes the process's stdin. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Called once the process runs, e.g. to size a TTY. */
  onStart?: (control: { resize(rows: number, cols: number): Promise<void> }) => void;
}

export interface LogsOptions {
  follow: boolean;
  tail?: number;
  stdout: Writable;
  stderr: Writable;
}

export interface VolumeSummary {
  name: string;
  labels: Record<string, string>;
}
