import type { Readable } from "node:stream";
import type { BorrowedBody } from "../engine.ts";
import { VmError } from "../../errors.ts";
import type {
  BuildOptions,
  ImageClient,
  ImageDetails,
  ImageSummary,
  LayerProgress,
  RegistryTransferOptions,
} from "../engine.ts";
import type { RawImage, RawImageSummary } from "./types.ts";
import { normalizeArch } from "../platform.ts";
import { EngineError } from "../errors.ts";
import { labelFilter, type DockerHttp, readText } from "../transport/http.ts";
import { StreamFailure, consumeJsonStream, type StreamMessage } from "./json-stream.ts";

const enc = encodeURIComponent;

export class DockerImageClient implements ImageClient {
  private readonly http: DockerHttp;

  constructor(http: DockerHttp) {
    this.http = http;
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
    if (!imageId) imageId = (await this.inspect(options.tag))?.id;
    if (!imageId) throw new VmError("BUILD_FAILED", `Build of ${options.tag} finished but produced no image`);
    return imageId;
  }

  async inspect(ref: string): Promise<ImageDetails | undefined> {
    const res = await this.http.request("GET", `/images/${enc(ref)}/json`, `Inspecting image ${ref}`, {
      accept: [404],
    });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    const raw = JSON.parse(await readText(res)) as RawImage;
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
      parent: raw.Parent ?? "",
      layers: raw.RootFS?.Layers ?? [],
      config: {
        env: raw.Config?.Env ?? [],
        cmd: raw.Config?.Cmd ?? null,
        entrypoint: raw.Config?.Entrypoint ?? null,
        workingDir: raw.Config?.WorkingDir ?? "",
        user: raw.Config?.User ?? "",
        exposedPorts: raw.Config?.ExposedPorts ?? {},
      },
    };
  }

  async history(ref: string): Promise<string[]> {
    const steps = await this.http.json<{ CreatedBy?: string }[]>(
      "GET",
      `/images/${enc(ref)}/history`,
      `Reading the history of image ${ref}`,
    );
    return steps.map((step) => step.CreatedBy ?? "").reverse(); // the engine lists the newest first
  }

  async tag(source: string, repo: string, tag: string): Promise<void> {
    await this.http.call("POST", `/images/${enc(source)}/tag`, `Tagging ${source} as ${repo}:${tag}`, {
      query: { repo, tag },
    });
  }

  save(ref: string): Promise<BorrowedBody> {
    return this.http.getBorrowed(`/images/${enc(ref)}/get`, `Saving image ${ref}`);
  }

  async load(source: Readable): Promise<string[]> {
    const res = await this.http.request("POST", "/images/load", "Loading the image into the engine", {
      query: { quiet: true },
      stream: source,
      headers: { "Content-Type": "application/x-tar" },
    });
    const loaded: string[] = [];
    try {
      await consumeJsonStream(res, (m) => {
        const match = /Loaded image(?: ID)?: (\S+)/.exec(m.stream ?? "");
        if (match) loaded.push(match[1]!);
      });
    } catch (error) {
      if (error instanceof StreamFailure) {
        throw new VmError("LOAD_FAILED", `The engine refused the image in the file: ${error.engineMessage}`, {
          hint: "The file is probably damaged: check it with vm snapshot verify FILE and get a fresh copy (nothing was imported)",
        });
      }
      throw error;
    }
    return loaded;
  }

  async list(labels: Record<string, string>): Promise<ImageSummary[]> {
    let raw: RawImageSummary[];
    for (let attempt = 1; ; attempt++) {
      try {
        raw = await this.http.json<RawImageSummary[]>("GET", "/images/json", "Listing images", {
          query: { filters: labelFilter(labels) },
        });
        break;
      } catch (error) {
        // The containerd store fails the whole listing ("failed to read config content: ... not found", a
        // 500 or a 404) when an image is removed while it lists; the next listing no longer sees it.
        const transient = error instanceof EngineError && (error.status === 500 || error.status === 404);
        if (!transient || attempt >= 6) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    return raw.map((i) => ({ id: i.Id, tags: i.RepoTags ?? [], labels: i.Labels ?? {}, size: i.Size ?? 0 }));
  }

  async remove(ref: string, options: { force?: boolean } = {}): Promise<void> {
    await this.http.call("DELETE", `/images/${enc(ref)}`, `Removing image ${ref}`, {
      query: { force: options.force },
    });
  }

  async pull(ref: string, onProgress: (line: string) => void = () => {}): Promise<void> {
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

  async pullFrom(ref: string, options: RegistryTransferOptions): Promise<void> {
    const res = await this.http.request("POST", "/images/create", `Pulling ${ref}`, {
      query: { fromImage: ref },
      headers: options.auth ? { "X-Registry-Auth": options.auth } : {},
    });
    try {
      await consumeJsonStream(res, (m) => options.onProgress?.(layerProgress(m)));
    } catch (error) {
      if (error instanceof StreamFailure)
        throw new VmError("PULL_FAILED", `The engine could not pull ${ref}: ${error.engineMessage}`);
      throw error;
    }
  }

  async push(ref: string, options: RegistryTransferOptions): Promise<{ digest: string; size: number }> {
    const at = ref.lastIndexOf(":");
    const slash = ref.lastIndexOf("/");
    const [name, tag] = at > slash ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, "latest"];
    const res = await this.http.request("POST", `/images/${enc(name)}/push`, `Pushing ${ref}`, {
      query: { tag },
      // The engine refuses a push without the header, even to a registry that needs no credentials.
      headers: { "X-Registry-Auth": options.auth ?? Buffer.from("{}").toString("base64url") },
    });
    let pushed: { digest: string; size: number } | undefined;
    try {
      await consumeJsonStream(res, (m) => {
        const aux = m.aux as { Digest?: unknown; Size?: unknown } | undefined;
        if (typeof aux?.Digest === "string")
          pushed = { digest: aux.Digest, size: typeof aux.Size === "number" ? aux.Size : 0 };
        // The containerd store sends no aux message, only the CLI's line: "TAG: digest: sha256:... size: N".
        const line = /: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(m.status ?? "");
        if (!pushed && line) pushed = { digest: line[1]!, size: Number(line[2]) };
        options.onProgress?.(layerProgress(m));
      });
    } catch (error) {
      if (error instanceof StreamFailure)
        throw new VmError("PUSH_FAILED", `The engine could not push ${ref}: ${error.engineMessage}`);
      throw error;
    }
    if (!pushed) throw new VmError("PUSH_FAILED", `The engine pushed ${ref} but did not say its digest`);
    return pushed;
  }
}

function layerProgress(m: StreamMessage): LayerProgress {
  return {
    id: m.id ?? "",
    status: m.status ?? "",
    ...(m.progressDetail?.current !== undefined ? { current: m.progressDetail.current } : {}),
    ...(m.progressDetail?.total !== undefined ? { total: m.progressDetail.total } : {}),
  };
}
