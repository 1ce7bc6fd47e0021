import { createHash } from "node:crypto";
import type {
  CommitOptions,
  ContainerClient,
  ContainerDetails,
  ContainerSpec,
  ContainerSummary,
  Endpoint,
  Engine,
  EngineInfo,
  ImageClient,
  ImageDetails,
  ImageSummary,
  VolumeClient,
  VolumeSummary,
} from "../engine.ts";
import { requestFailed } from "../errors.ts";

/**
 * An engine in memory, for unit tests of env and snapshot logic: images with tags and parents, containers
 * that use them, volumes, and the refusals a real engine gives (removing an image a container or a child
 * image still needs, a taken container name, a volume in use). It follows the classic store: removing an
 * image's last tag removes the image unless a child image keeps it. What moves bytes (build, save, load,
 * archives, exec, logs) is not modelled: anything that touches image content is tested on real engines.
 */
export class MemoryEngine implements Engine {
  readonly endpoint: Endpoint = { url: "memory://", source: "test" };
  readonly images: ImageClient;
  readonly containers: ContainerClient;
  readonly volumes: VolumeClient;
  readonly imageRecords = new Map<
    string,
    { tags: string[]; parent: string; labels: Record<string, string> }
  >();
  readonly containerRecords = new Map<string, { spec: ContainerSpec; imageId: string; state: string }>();
  readonly volumeRecords = new Map<string, Record<string, string>>();
  #counter = 0;

  constructor() {
    const unsupported = (what: string) => () =>
      Promise.reject(new Error(`MemoryEngine does not model ${what}`));
    this.images = {
      build: unsupported("builds"),
      save: unsupported("save"),
      load: unsupported("load"),
      pull: unsupported("pull"),
      pullFrom: unsupported("pullFrom"),
      push: unsupported("push"),
      history: unsupported("history"),
      inspect: (ref) => Promise.resolve(this.#imageDetails(ref)),
      list: (labels) => Promise.resolve(this.#listImages(labels)),
      remove: (ref) => this.#removeImage(ref),
      tag: (source, repo, tag) => this.#tag(source, `${repo}:${tag}`),
    };
    this.containers = {
      create: (spec) => this.#createContainer(spec),
      start: (id) => this.#setState(id, "running"),
      stop: (id) => this.#setState(id, "exited"),
      pause: (id) => this.#setState(id, "paused"),
      unpause: (id) => this.#setState(id, "running"),
      remove: (id, options) => this.#removeContainer(id, options?.force ?? false),
      inspect: (id) => Promise.resolve(this.#containerDetails(id)),
      list: (labels) => Promise.resolve(this.#listContainers(labels)),
      commit: (id, options) => this.#commit(id, options),
      createHelper: unsupported("helper containers"),
      getArchive: unsupported("archives"),
      putArchive: unsupported("archives"),
      runOnce: unsupported("runOnce"),
      exec: unsupported("exec"),
      logs: unsupported("logs"),
    };
    this.volumes = {
      ensure: async (name, labels) => {
        if (!this.volumeRecords.has(name)) this.volumeRecords.set(name, labels);
      },
      list: (labels) =>
        Promise.resolve(
          [...this.volumeRecords]
            .filter(([, l]) => matches(l, labels))
            .map(([name, l]): VolumeSummary => ({ name, labels: l })),
        ),
      remove: (name) => this.#removeVolume(name),
    };
  }

  /** Creates a container named `name` on `image` with `labels` and the rest of its spec empty; its id. */
  addContainer(name: string, image: string, labels: Record<string, string> = {}): Promise<string> {
    const spec = { name, image, labels, env: {}, workingDir: "/", hostname: name, entrypoint: [], cmd: [] };
    return this.containers.create({ ...spec, binds: [], volumes: [], ports: [] });
  }

  /** Adds an image (its id derived from `name`) with tags, a parent and labels; returns its id. */
  addImage(
    name: string,
    options: { tags?: string[]; parent?: string; labels?: Record<string, string> } = {},
  ) {
    const id = `sha256:${createHash("sha256").update(name).digest("hex")}`;
    this.imageRecords.set(id, { tags: [], parent: options.parent ?? "", labels: options.labels ?? {} });
    for (const tag of options.tags ?? []) this.#moveTag(id, tag);
    return id;
  }

  info(): Promise<EngineInfo> {
    return Promise.resolve({
      serverVersion: "0-memory",
      apiVersion: "1.41",
      os: "linux",
      architecture: "x86_64",
      imageStore: "classic",
      storageDriver: "memory",
      rootDir: "/",
      cpus: 2,
      memoryBytes: 8 * 1024 ** 3,
    });
  }

  close(): void {}

  explain(error: unknown): unknown {
    return error;
  }

  #resolveImage(ref: string): string | undefined {
    if (this.imageRecords.has(ref)) return ref;
    const tag = ref.includes(":") ? ref : `${ref}:latest`;
    for (const [id, image] of this.imageRecords) if (image.tags.includes(tag)) return id;
    if (/^[0-9a-f]{12,64}$/.test(ref))
      for (const id of this.imageRecords.keys()) if (id.startsWith(`sha256:${ref}`)) return id;
    return undefined;
  }

  #imageDetails(ref: string): ImageDetails | undefined {
    const id = this.#resolveImage(ref);
    const image = id && this.imageRecords.get(id);
    if (!id || !image) return undefined;
    const config = { env: [], cmd: null, entrypoint: null, workingDir: "", user: "", exposedPorts: {} };
    return {
      id,
      tags: [...image.tags],
      labels: { ...image.labels },
      size: 0,
      created: "2026-01-01T00:00:00Z",
      platform: { os: "linux", architecture: "amd64" },
      user: "",
      workingDir: "",
      layers: [],
      parent: image.parent,
      config,
    };
  }

  #listImages(labels: Record<string, string>): ImageSummary[] {
    return [...this.imageRecords]
      .filter(([, image]) => matches(image.labels, labels))
      .map(([id, image]) => ({ id, tags: [...image.tags], labels: { ...image.labels }, size: 0 }));
  }

  #moveTag(id: string, tag: string): void {
    for (const image of this.imageRecords.values()) image.tags = image.tags.filter((t) => t !== tag);
    this.imageRecords.get(id)!.tags.push(tag);
  }

  async #tag(source: string, tag: string): Promise<void> {
    const id = this.#resolveImage(source);
    if (!id) throw requestFailed(404, `No such image: ${source}`, "Tagging an image");
    this.#moveTag(id, tag);
  }

  async #removeImage(ref: string): Promise<void> {
    const id = this.#resolveImage(ref);
    const image = id && this.imageRecords.get(id);
    const what = `Removing image ${ref}`;
    if (!id || !image) throw requestFailed(404, `No such image: ${ref}`, what);
    const byTag = id !== ref && !/^[0-9a-f]{12,64}$/.test(ref);
    const users = [...this.containerRecords.values()].filter((c) => c.imageId === id);
    const children = [...this.imageRecords.values()].filter((i) => i.parent === id);
    if (byTag && image.tags.length > 1) {
      image.tags = image.tags.filter((t) => t !== (ref.includes(":") ? ref : `${ref}:latest`));
      return;
    }
    if (users.length > 0)
      throw requestFailed(409, `conflict: image ${ref} is being used by a container`, what);
    if (!byTag && image.tags.length > 1)
      throw requestFailed(409, `conflict: image ${ref} is referenced in several repositories`, what);
    if (children.length > 0) {
      if (!byTag) throw requestFailed(409, `conflict: image ${ref} has dependent child images`, what);
      image.tags = [];
      return;
    }
    this.imageRecords.delete(id);
  }

  async #createContainer(spec: ContainerSpec): Promise<string> {
    for (const c of this.containerRecords.values())
      if (c.spec.name === spec.name)
        throw requestFailed(
          409,
          `Conflict. The container name "/${spec.name}" is already in use`,
          "Creating a container",
        );
    const imageId = this.#resolveImage(spec.image);
    if (!imageId) throw requestFailed(404, `No such image: ${spec.image}`, "Creating a container");
    const id = createHash("sha256").update(`container-${++this.#counter}`).digest("hex");
    this.containerRecords.set(id, { spec, imageId, state: "created" });
    return id;
  }

  #container(id: string) {
    const found =
      this.containerRecords.get(id) ?? [...this.containerRecords.values()].find((c) => c.spec.name === id);
    if (!found) throw requestFailed(404, `No such container: ${id}`, "Using a container");
    return found;
  }

  async #setState(id: string, state: string): Promise<void> {
    this.#container(id).state = state;
  }

  async #removeContainer(id: string, force: boolean): Promise<void> {
    const entry = [...this.containerRecords].find(([key, c]) => key === id || c.spec.name === id);
    if (!entry) throw requestFailed(404, `No such container: ${id}`, "Removing a container");
    if (entry[1].state === "running" && !force)
      throw requestFailed(409, "You cannot remove a running container", "Removing a container");
    this.containerRecords.delete(entry[0]);
  }

  #summary(id: string, c: { spec: ContainerSpec; imageId: string; state: string }): ContainerSummary {
    return {
      id,
      name: c.spec.name,
      image: c.spec.image,
      imageId: c.imageId,
      state: c.state,
      status: c.state,
      labels: { ...c.spec.labels },
      created: 0,
    };
  }

  #listContainers(labels: Record<string, string>): ContainerSummary[] {
    return [...this.containerRecords]
      .filter(([, c]) => matches(c.spec.labels, labels))
      .map(([id, c]) => this.#summary(id, c));
  }

  #containerDetails(id: string): ContainerDetails | undefined {
    const entry = [...this.containerRecords].find(([key, c]) => key === id || c.spec.name === id);
    if (!entry) return undefined;
    const [key, c] = entry;
    return {
      ...this.#summary(key, c),
      state: {
        status: c.state,
        running: c.state === "running",
        paused: c.state === "paused",
        startedAt: "",
        exitCode: 0,
      },
      created: "2026-01-01T00:00:00Z",
      memoryBytes: c.spec.memoryBytes ?? 0,
      nanoCpus: c.spec.nanoCpus ?? 0,
      mounts: c.spec.volumes.map((v) => ({
        type: "volume",
        source: v.name,
        destination: v.target,
        name: v.name,
      })),
      ports: [],
    };
  }

  async #commit(id: string, options: CommitOptions): Promise<string> {
    const container = this.#container(id);
    return this.addImage(`commit-${++this.#counter}`, {
      parent: container.imageId,
      labels: options.labels,
      tags: [`${options.repo}:${options.tag}`],
    });
  }

  async #removeVolume(name: string): Promise<void> {
    if (!this.volumeRecords.has(name))
      throw requestFailed(404, `get ${name}: no such volume`, "Removing a volume");
    for (const c of this.containerRecords.values())
      if (c.spec.volumes.some((v) => v.name === name))
        throw requestFailed(409, `remove ${name}: volume is in use`, "Removing a volume");
    this.volumeRecords.delete(name);
  }
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([key, value]) => have[key] === value);
}
