import type { Endpoint } from "../engine.ts";
import { DockerContainerClient } from "./container-client.ts";
import { DockerImageClient } from "./image-client.ts";
import type { RawInfo } from "./types.ts";
import { DockerVolumeClient } from "./volume-client.ts";
import type { Engine, EngineInfo } from "../engine.ts";
import { DockerHttp } from "../transport/http.ts";
import { normalizeArch } from "../platform.ts";

/** The Engine interface over the Docker Engine API (Docker 20.10+, either image store; Podman's compatible API). */
export class DockerEngine implements Engine {
  readonly endpoint: Endpoint;
  readonly images: DockerImageClient;
  readonly containers: DockerContainerClient;
  readonly volumes: DockerVolumeClient;
  private readonly http: DockerHttp;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.http = new DockerHttp(endpoint);
    this.images = new DockerImageClient(this.http);
    this.containers = new DockerContainerClient(this.http);
    this.volumes = new DockerVolumeClient(this.http);
  }

  explain(error: unknown): unknown {
    return this.http.explain(error);
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
}
