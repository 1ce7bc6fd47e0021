import type { Readable, Writable } from "node:stream";

/** Where the engine is, as discovered from DOCKER_HOST, the docker context or the default socket. */
export interface Endpoint {
  /** As the user would write it in DOCKER_HOST. */
  url: string;
  source: string;
  socketPath?: string;
  host?: string;
  port?: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
}

/** A response body read straight from the engine's socket, without Node's stream machinery. */
export interface BorrowedBody extends AsyncIterable<Buffer> {
  destroy(): void;
}

/**
 * Everything vm asks of a container engine. The Docker API implementation is the only code that talks to
 * an engine; everything else takes an `Engine`, so pure logic can be unit-tested with a fake.
 */
export interface Engine {
  readonly endpoint: Endpoint;
  readonly images: ImageClient;
  readonly containers: ContainerClient;
  readonly volumes: VolumeClient;
  info(): Promise<EngineInfo>;
  close(): void;
  /** Turns an error from one of this engine's streams into what to tell the user (a lost connection). */
  explain(error: unknown): unknown;
}

export interface ImageClient {
  build(options: BuildOptions): Promise<string>;
  inspect(ref: string): Promise<ImageDetails | undefined>;
  /** The `created_by` line of each history step, oldest first (as the image config lists them). */
  history(ref: string): Promise<string[]>;
  list(labels: Record<string, string>): Promise<ImageSummary[]>;
  remove(ref: string, options?: { force?: boolean }): Promise<void>;
  pull(ref: string, onProgress?: (line: string) => void): Promise<void>;
  /**
   * Pulls from a registry with credentials (the Engine API's X-Registry-Auth value, or none for anonymous),
   * reporting each layer's progress as the engine sees it.
   */
  pullFrom(ref: string, options: RegistryTransferOptions): Promise<void>;
  /** Pushes a tagged image to its registry; resolves with the digest and size of the manifest pushed. */
  push(ref: string, options: RegistryTransferOptions): Promise<{ digest: string; size: number }>;
  tag(source: string, repo: string, tag: string): Promise<void>;
  /**
   * The image as `docker save` writes it, streamed with little garbage: each chunk is a view into one reused
   * buffer, valid only until the next chunk is asked for. A consumer that keeps bytes past that must copy them.
   */
  save(ref: string): Promise<BorrowedBody>;
  /** Loads a `docker save` stream; resolves with the IDs and names the engine reports loading. */
  load(source: Readable): Promise<string[]>;
}

export interface RegistryTransferOptions {
  /** The X-Registry-Auth header's value; undefined for anonymous. */
  auth: string | undefined;
  onProgress?: (event: LayerProgress) => void;
}

/** One layer's state in an engine push or pull, as the engine's progress stream says it. */
export interface LayerProgress {
  /** The short layer id the engine shows (12 hex digits), or "" for messages about the whole image. */
  id: string;
  status: string;
  current?: number;
  total?: number;
}

export interface ContainerClient {
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  stop(id: string, timeoutSeconds?: number): Promise<void>;
  remove(id: string, options?: { force?: boolean }): Promise<void>;
  inspect(id: string): Promise<ContainerDetails | undefined>;
  list(labels: Record<string, string>): Promise<ContainerSummary[]>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  /** Commits a container's filesystem as a new image with the given config; returns the image ID. */
  commit(id: string, options: CommitOptions): Promise<string>;
  /** A container that is never started, only used to reach volumes through the archive API. */
  createHelper(
    image: string,
    volumes: { name: string; target: string }[],
    labels: Record<string, string>,
  ): Promise<string>;
  /** A tar stream of a path inside a container (a stopped one too). */
  getArchive(id: string, path: string): Promise<Readable>;
  /** Extracts a tar stream into a folder inside a container. */
  putArchive(id: string, path: string, tar: Readable): Promise<void>;
  /** Runs a command in a throwaway container (no network) and collects its output, bounded in time. */
  runOnce(image: string, options: RunOnceOptions): Promise<RunOnceResult>;
  exec(containerId: string, options: ExecOptions): Promise<number>;
  logs(containerId: string, options: LogsOptions): Promise<void>;
}

export interface VolumeClient {
  ensure(name: string, labels: Record<string, string>): Promise<void>;
  list(labels: Record<string, string>): Promise<VolumeSummary[]>;
  remove(name: string): Promise<void>;
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
  /** The layers' diff IDs (sha256 of each uncompressed layer tar), bottom first. */
  layers: string[];
  /** The image this one was built on, when the engine tracks it (intermediate build steps). */
  parent: string;
  config: ImageConfig;
}

/** The parts of an image's config a committed snapshot keeps from its box. */
export interface ImageConfig {
  env: string[];
  cmd: string[] | null;
  entrypoint: string[] | null;
  workingDir: string;
  user: string;
  exposedPorts: Record<string, object>;
}

export interface CommitOptions {
  repo: string;
  tag: string;
  labels: Record<string, string>;
  /** Dockerfile instructions (CMD, ENTRYPOINT, USER, WORKDIR, ...) applied to the committed config. */
  changes: string[];
  comment?: string;
}

export interface RunOnceOptions {
  cmd: string[];
  user?: string;
  timeoutMs: number;
  labels: Record<string, string>;
  /** Output beyond this many bytes per stream is dropped. */
  maxOutputBytes?: number;
}

export interface RunOnceResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
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
  imageId: string;
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
