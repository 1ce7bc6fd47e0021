import type { Readable } from "node:stream";
import type {
  CommitOptions,
  ContainerClient,
  ContainerDetails,
  ContainerSpec,
  ContainerSummary,
  ExecOptions,
  LogsOptions,
  RunOnceOptions,
  RunOnceResult,
} from "../engine.ts";
import type { RawContainer, RawContainerSummary } from "./types.ts";
import { toContainerDetails, toContainerSummary } from "./mappers.ts";
import { Collector, pumpSession } from "./exec-session.ts";
import { labelFilter, type DockerHttp, readText } from "../transport/http.ts";
import { demultiplex } from "./multiplex.ts";

const enc = encodeURIComponent;

export class DockerContainerClient implements ContainerClient {
  private readonly http: DockerHttp;

  constructor(http: DockerHttp) {
    this.http = http;
  }

  async create(spec: ContainerSpec): Promise<string> {
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

  async start(id: string): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/start`, `Starting container ${id}`, {
      accept: [304],
    });
  }

  async stop(id: string, timeoutSeconds = 10): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/stop`, `Stopping container ${id}`, {
      query: { t: timeoutSeconds },
      accept: [304],
    });
  }

  async remove(id: string, options: { force?: boolean } = {}): Promise<void> {
    await this.http.call("DELETE", `/containers/${enc(id)}`, `Removing container ${id}`, {
      query: { force: options.force, v: false },
      accept: [404],
    });
  }

  async inspect(id: string): Promise<ContainerDetails | undefined> {
    const res = await this.http.request("GET", `/containers/${enc(id)}/json`, `Inspecting container ${id}`, {
      accept: [404],
    });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    return toContainerDetails(JSON.parse(await readText(res)) as RawContainer);
  }

  async list(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const raw = await this.http.json<RawContainerSummary[]>("GET", "/containers/json", "Listing containers", {
      query: { all: true, filters: labelFilter(labels) },
    });
    return raw.map(toContainerSummary);
  }

  async pause(id: string): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/pause`, `Pausing container ${id}`);
  }

  async unpause(id: string): Promise<void> {
    await this.http.call("POST", `/containers/${enc(id)}/unpause`, `Unpausing container ${id}`);
  }

  async commit(id: string, options: CommitOptions): Promise<string> {
    // The engine merges the container's config into whatever is sent (an empty field takes the container's
    // value), so resetting fields is done with Dockerfile instructions in `changes`.
    const res = await this.http.json<{ Id: string }>("POST", "/commit", `Committing container ${id}`, {
      query: {
        container: id,
        repo: options.repo,
        tag: options.tag,
        comment: options.comment,
        pause: false,
        changes: options.changes,
      },
      body: { Labels: options.labels },
    });
    return res.Id;
  }

  async createHelper(
    image: string,
    volumes: { name: string; target: string }[],
    labels: Record<string, string>,
  ): Promise<string> {
    const res = await this.http.json<{ Id: string }>(
      "POST",
      "/containers/create",
      `Creating a helper container from ${image}`,
      {
        body: {
          Image: image,
          Entrypoint: ["true"],
          Cmd: [],
          Labels: labels,
          NetworkDisabled: true,
          HostConfig: {
            NetworkMode: "none",
            Mounts: volumes.map((v) => ({ Type: "volume", Source: v.name, Target: v.target })),
          },
        },
      },
    );
    return res.Id;
  }

  async getArchive(id: string, path: string): Promise<Readable> {
    return this.http.request("GET", `/containers/${enc(id)}/archive`, `Reading ${path} from a container`, {
      query: { path },
    });
  }

  async putArchive(id: string, path: string, tar: Readable): Promise<void> {
    await this.http.call("PUT", `/containers/${enc(id)}/archive`, `Writing into ${path} in a container`, {
      query: { path },
      stream: tar,
      headers: { "Content-Type": "application/x-tar" },
    });
  }

  async runOnce(image: string, options: RunOnceOptions): Promise<RunOnceResult> {
    const created = await this.http.json<{ Id: string }>(
      "POST",
      "/containers/create",
      `Creating a probe container from ${image}`,
      {
        body: {
          Image: image,
          Entrypoint: options.cmd,
          Cmd: [],
          User: options.user ?? "",
          Labels: options.labels,
          NetworkDisabled: true,
          HostConfig: { NetworkMode: "none" },
        },
      },
    );
    const id = created.Id;
    try {
      await this.start(id);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">(
        (resolve) => (timer = setTimeout(() => resolve("timeout"), options.timeoutMs)),
      );
      const waited = this.http.json<{ StatusCode: number }>(
        "POST",
        `/containers/${id}/wait`,
        "Waiting for the probe",
        {
          query: { condition: "not-running" },
        },
      );
      const first = await Promise.race([waited, timeout]);
      clearTimeout(timer);
      let timedOut = false;
      let exitCode: number;
      if (first === "timeout") {
        timedOut = true;
        await this.http.call("POST", `/containers/${id}/kill`, "Stopping the probe", { accept: [404, 409] });
        exitCode = (await waited).StatusCode;
      } else {
        exitCode = first.StatusCode;
      }
      const limit = options.maxOutputBytes ?? 8 * 1024 * 1024;
      const stdout = new Collector(limit);
      const stderr = new Collector(limit);
      const res = await this.http.request("GET", `/containers/${id}/logs`, "Reading the probe's output", {
        query: { stdout: true, stderr: true },
      });
      await demultiplex(res, stdout, stderr);
      return { exitCode, stdout: stdout.text(), stderr: stderr.text(), timedOut };
    } finally {
      await this.remove(id, { force: true });
    }
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
}
