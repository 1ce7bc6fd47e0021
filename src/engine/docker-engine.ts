import { once } from "node:events";
import type { Duplex } from "node:stream";
import { ExitCode, VmError } from "../errors.ts";
import type { Endpoint } from "./connection.ts";
import type {
  BuildOptions,
  ContainerDetails,
  ContainerSpec,
  ContainerSummary,
  Engine,
  EngineInfo,
  ExecOptions,
  ImageDetails,
  ImageSummary,
  LogsOptions,
  VolumeSummary,
} from "./engine.ts";
import { DockerHttp, EngineError } from "./http.ts";
import { StreamFailure, consumeJsonStream } from "./json-stream.ts";
import { demultiplex } from "./multiplex.ts";

const labelFilter = (labels: Record<string, string>) =>
  JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });

const enc = encodeURIComponent;

/** The Engine interface over the Docker Engine API (works with Docker 20.10+ and Podman's compatible API). */
export class DockerEngine implements Engine {
  readonly endpoint: Endpoint;
  private readonly http: DockerHttp;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.http = new DockerHttp(endpoint);
  }

  close(): void {
    this.http.close();
  }

  async info(): Promise<EngineInfo> {
    const [info, version] = await Promise.all([
      this.http.json<RawInfo>("GET", "/info", "Reading engine info"),
      this.http.json<{ ApiVersion?: string }>("GET", "/version", "Reading engine version"),
    ]);
    const driverStatus = info.DriverStatus ?? [];
    const containerd = driverStatus.some(([, value]) => value?.startsWith("io.containerd.snapshotter"));
    return {
      serverVersion: info.ServerVersion ?? "unknown",
      apiVersion: version.ApiVersion ?? "unknown",
      os: info.OSType ?? "linux",
      architecture: normalizeArch(info.Architecture ?? "unknown"),
      imageStore: containerd ? "containerd" : "classic",
      storageDriver: info.Driver ?? "unknown",
      rootDir: info.DockerRootDir ?? "",
      cpus: info.NCPU ?? 0,
      memoryBytes: info.MemTotal ?? 0,
    };
  }

  async build(options: BuildOptions): Promise<string> {
    // The API's /build runs the builder the engine offers over plain HTTP (the classic builder); BuildKit
    // needs a gRPC session that only the docker CLI's buildx speaks. The classic builder covers the
    // Dockerfiles dev environments use and gives us a structured stream with the failing step's message.
    const res = await this.http.request("POST", "/build", `Building ${options.tag}`, {
      query: {
        t: options.tag,
        dockerfile: options.dockerfile,
        buildargs: JSON.stringify(options.buildArgs),
        labels: JSON.stringify(options.labels),
        rm: true,
        forcerm: true,
      },
      stream: options.context,
      headers: { "Content-Type": "application/x-tar" },
    });
    let imageId: string | undefined;
    let step = "";
    try {
      await consumeJsonStream(res, (message) => {
        if (message.aux?.ID) imageId = message.aux.ID;
        if (message.stream) {
          const match = /^Step \d+\/\d+ : .*/m.exec(message.stream);
          if (match) step = match[0];
          options.onOutput(message.stream);
        } else if (message.status) {
          options.onOutput(`${message.status}${message.progress ? " " + message.progress : ""}\n`);
        }
      });
    } catch (error) {
      if (error instanceof StreamFailure) {
        throw new VmError(
          "BUILD_FAILED",
          `Build of ${options.tag} failed${step ? ` at ${step}` : ""}: ${error.engineMessage}`,
          {
            hint: "Fix the Dockerfile step above and run the command again",
          },
        );
      }
      throw error;
    }
    if (!imageId) imageId = (await this.inspectImage(options.tag))?.id;
    if (!imageId) throw new VmError("BUILD_FAILED", `Build of ${options.tag} finished but produced no image`);
    return imageId;
  }

  async inspectImage(ref: string): Promise<ImageDetails | undefined> {
    const res = await this.http.request("GET", `/images/${enc(ref)}/json`, `Inspecting image ${ref}`, {
      accept: [404],
    });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    const raw = JSON.parse(await text(res)) as RawImage;
    return {
      id: raw.Id,
      tags: raw.RepoTags ?? [],
      labels: raw.Config?.Labels ?? {},
      size: raw.Size ?? 0,
      created: raw.Created ?? "",
      platform: {
        os: raw.Os ?? "linux",
        architecture: normalizeArch(raw.Architecture ?? "unknown"),
        ...(raw.Variant ? { variant: raw.Variant } : {}),
      },
      user: raw.Config?.User ?? "",
      workingDir: raw.Config?.WorkingDir ?? "",
    };
  }

  async listImages(labels: Record<string, string>): Promise<ImageSummary[]> {
    const raw = await this.http.json<RawImageSummary[]>("GET", "/images/json", "Listing images", {
      query: { filters: labelFilter(labels) },
    });
    return raw.map((i) => ({ id: i.Id, tags: i.RepoTags ?? [], labels: i.Labels ?? {}, size: i.Size ?? 0 }));
  }

  async removeImage(ref: string, options: { force?: boolean } = {}): Promise<void> {
    await this.http.call("DELETE", `/images/${enc(ref)}`, `Removing image ${ref}`, {
      query: { force: options.force },
    });
  }

  async pullImage(ref: string, onProgress: (line: string) => void = () => {}): Promise<void> {
    const res = await this.http.request("POST", "/images/create", `Pulling ${ref}`, {
      query: { fromImage: ref },
    });
    try {
      await consumeJsonStream(res, (m) => {
        if (m.status)
          onProgress(`${m.id ? m.id + ": " : ""}${m.status}${m.progress ? " " + m.progress : ""}`);
      });
    } catch (error) {
      if (error instanceof StreamFailure)
        throw new VmError("PULL_FAILED", `Pulling ${ref} failed: ${error.engineMessage}`);
      throw error;
    }
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    const exposed: Record<string, object> = {};
    for (const p of spec.ports) {
      const key = `${p.container}/${p.protocol}`;
      exposed[key] = {};
      (portBindings[key] ??= []).push({ HostIp: p.hostIp ?? "", HostPort: String(p.host) });
    }
    const body = {
      Image: spec.image,
      Hostname: spec.hostname,
      Labels: spec.labels,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: spec.workingDir,
      User: spec.user ?? "",
      Entrypoint: spec.entrypoint,
      Cmd: spec.cmd,
      ExposedPorts: exposed,
      HostConfig: {
        // An init process as PID 1 forwards signals and reaps zombies, so `vm stop` is quick.
        Init: true,
        Binds: spec.binds,
        Mounts: spec.volumes.map((v) => ({
          Type: "volume",
          Source: v.name,
          Target: v.target,
          ReadOnly: v.readOnly,
        })),
        PortBindings: portBindings,
        Memory: spec.memoryBytes ?? 0,
        NanoCpus: spec.nanoCpus ?? 0,
      },
    };
    const res = await this.http.json<{ Id: string }>(
      "POST",
      "/containers/create",
      `Creating container ${spec.name}`,
      {
        query: { name: spec.name },
        body,
      },
    );
    return res.Id;
  }

  async startContainer(id: string): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/start`, `Starting container ${id}`, {
      accept: [304],
    });
  }

  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/stop`, `Stopping container ${id}`, {
      query: { t: timeoutSeconds },
      accept: [304],
    });
  }

  async removeContainer(id: string, options: { force?: boolean } = {}): Promise<void> {
    await this.http.call("DELETE", `/containers/${enc(id)}`, `Removing container ${id}`, {
      query: { force: options.force, v: false },
      accept: [404],
    });
  }

  async inspectContainer(id: string): Promise<ContainerDetails | undefined> {
    const res = await this.http.request("GET", `/containers/${enc(id)}/json`, `Inspecting container ${id}`, {
      accept: [404],
    });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    const raw = JSON.parse(await text(res)) as RawContainer;
    const ports: ContainerDetails["ports"] = [];
    for (const [container, bindings] of Object.entries(raw.NetworkSettings?.Ports ?? {})) {
      for (const b of bindings ?? []) ports.push({ container, hostIp: b.HostIp, hostPort: b.HostPort });
    }
    return {
      id: raw.Id,
      name: raw.Name.replace(/^\//, ""),
      image: raw.Config?.Image ?? "",
      imageId: raw.Image,
      labels: raw.Config?.Labels ?? {},
      state: {
        status: raw.State.Status,
        running: raw.State.Running,
        paused: raw.State.Paused,
        startedAt: raw.State.StartedAt,
        exitCode: raw.State.ExitCode,
      },
      created: raw.Created,
      memoryBytes: raw.HostConfig?.Memory ?? 0,
      nanoCpus: raw.HostConfig?.NanoCpus ?? 0,
      mounts: (raw.Mounts ?? []).map((m) => ({
        type: m.Type,
        source: m.Source,
        destination: m.Destination,
        ...(m.Name ? { name: m.Name } : {}),
      })),
      ports,
    };
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const raw = await this.http.json<RawContainerSummary[]>("GET", "/containers/json", "Listing containers", {
      query: { all: true, filters: labelFilter(labels) },
    });
    return raw.map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
      image: c.Image,
      state: c.State,
      status: c.Status,
      labels: c.Labels ?? {},
      created: c.Created,
    }));
  }

  async exec(containerId: string, options: ExecOptions): Promise<number> {
    const created = await this.http.json<{ Id: string }>(
      "POST",
      `/containers/${enc(containerId)}/exec`,
      `Running a command in ${containerId}`,
      {
        body: {
          Cmd: options.cmd,
          AttachStdin: options.stdin !== undefined,
          AttachStdout: true,
          AttachStderr: true,
          Tty: options.tty,
          User: options.user ?? "",
          WorkingDir: options.workingDir ?? "",
          Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
        },
      },
    );
    const execId = created.Id;
    const socket = await this.http.hijack(
      `/exec/${execId}/start`,
      { Detach: false, Tty: options.tty },
      "Starting exec",
    );
    options.onStart?.({
      resize: async (rows, cols) => {
        await this.http.call("POST", `/exec/${execId}/resize`, "Resizing the terminal", {
          query: { h: rows, w: cols },
          accept: [404, 409, 500],
        });
      },
    });
    await pumpSession(socket, options);
    const inspect = await this.http.json<{ ExitCode: number | null; Running: boolean }>(
      "GET",
      `/exec/${execId}/json`,
      "Reading exec result",
    );
    return inspect.ExitCode ?? 0;
  }

  async logs(containerId: string, options: LogsOptions): Promise<void> {
    const res = await this.http.request(
      "GET",
      `/containers/${enc(containerId)}/logs`,
      `Reading logs of ${containerId}`,
      {
        query: { stdout: true, stderr: true, follow: options.follow, tail: options.tail ?? "all" },
      },
    );
    await demultiplex(res, options.stdout, options.stderr);
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.http.call("POST", "/volumes/create", `Creating volume ${name}`, {
      body: { Name: name, Labels: labels },
    });
  }

  async listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]> {
    const raw = await this.http.json<{
      Volumes: { Name: string; Labels: Record<string, string> | null }[] | null;
    }>("GET", "/volumes", "Listing volumes", { query: { filters: labelFilter(labels) } });
    return (raw.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
  }

  async removeVolume(name: string): Promise<void> {
    await this.http.call("DELETE", `/volumes/${enc(name)}`, `Removing volume ${name}`, { accept: [404] });
  }
}

/** Carries one exec session: our stdin to the socket, the socket to our stdout/stderr, until the process ends. */
async function pumpSession(socket: Duplex, options: ExecOptions): Promise<void> {
  const { stdin } = options;
  const onData = (chunk: Buffer) => {
    if (!socket.write(chunk)) {
      stdin?.pause();
      socket.once("drain", () => stdin?.resume());
    }
  };
  // Closing our half of the connection is how the process's stdin gets EOF.
  const onEnd = () => socket.end();
  if (stdin) {
    stdin.on("data", onData);
    stdin.once("end", onEnd);
  }
  try {
    if (options.tty) {
      for await (const chunk of socket) {
        if (!options.stdout.write(chunk as Buffer)) await once(options.stdout, "drain");
      }
    } else {
      await demultiplex(socket, options.stdout, options.stderr);
    }
  } catch (error) {
    throw new VmError(
      "EXEC_STREAM_FAILED",
      `The command's output stream broke: ${(error as Error).message}`,
      {
        exitCode: ExitCode.engine,
        cause: error,
      },
    );
  } finally {
    if (stdin) {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.pause();
    }
    socket.destroy();
  }
}

async function text(res: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The engine reports the host's arch as uname does (x86_64); images use Go's names (amd64). */
export function normalizeArch(arch: string): string {
  const map: Record<string, string> = {
    x86_64: "amd64",
    aarch64: "arm64",
    armv7l: "arm",
    i386: "386",
    i686: "386",
  };
  return map[arch] ?? arch;
}

export { EngineError };

interface RawInfo {
  ServerVersion?: string;
  OSType?: string;
  Architecture?: string;
  Driver?: string;
  DriverStatus?: [string, string][] | null;
  DockerRootDir?: string;
  NCPU?: number;
  MemTotal?: number;
}

interface RawImage {
  Id: string;
  RepoTags?: string[] | null;
  Size?: number;
  Created?: string;
  Os?: string;
  Architecture?: string;
  Variant?: string;
  Config?: { Labels?: Record<string, string> | null; User?: string; WorkingDir?: string } | null;
}

interface RawImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  Labels?: Record<string, string> | null;
  Size?: number;
}

interface RawContainer {
  Id: string;
  Name: string;
  Image: string;
  Created: string;
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  State: { Status: string; Running: boolean; Paused: boolean; StartedAt: string; ExitCode: number };
  HostConfig?: { Memory?: number; NanoCpus?: number };
  Mounts?: { Type: string; Source: string; Destination: string; Name?: string }[];
  NetworkSettings?: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

interface RawContainerSummary {
  Id: string;
  Names?: string[];
  Image: string;
  State: string;
  Status: string;
  Labels?: Record<string, string> | null;
  Created: number;
}
