// The registry rows of `npm run bench`: `vm snapshot push`/`pull` against `docker push`/`pull` of the same
// image to the same registry, a private Distribution registry the bench starts and stops. See
// docs/performance.md, "Registry push and pull".
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ensureImages } from "./images.ts";
import { alternate, run, timed, type MemoryRow, type Row, type Stats, type SuiteOptions } from "./lib.ts";
import {
  ChildServer,
  freePort,
  node,
  removeLabelledImages,
  SECOND_ENGINE,
  secondEngineUp,
  vmTimed as timedVm,
} from "./processes.ts";

const SNAPSHOT = "bench-registry";
const PULLED = "bench-pulled";

export type RegistryRow = Row;

export interface RegistryResults {
  rows: RegistryRow[];
  absolute: { name: string; stats: Stats; limit: number }[];
  memory: MemoryRow[];
  /** What shows that every timed push and pull moved the whole image. */
  facts: Record<string, unknown>;
}

/** `rounds`: of the slow rows (a full push or pull of the dev image). */
export interface RegistryOptions extends SuiteOptions {
  /** Rounds of the fast ones (re-push). */
  fastRounds: number;
}

/**
 * A Distribution registry on a free loopback port, plain HTTP (engines allow that for 127.0.0.0/8),
 * anonymous, its storage under the bench's temporary folder. `reset()` restarts it on empty storage, so
 * the next push uploads every blob: nothing to dedupe against and nothing the engine could mount.
 */
class Registry {
  readonly host: string;
  private readonly root: string;
  private readonly storage: string;
  private readonly config: string;
  readonly logFile: string;
  private readonly server: ChildServer;
  private logOffset = 0;

  constructor(dir: string) {
    this.root = dir;
    this.storage = join(dir, "storage");
    this.config = join(dir, "config.yml");
    this.logFile = join(dir, "registry.log");
    this.host = `127.0.0.1:${freePort()}`;
    writeFileSync(
      this.config,
      [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${this.storage}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${this.host}`,
        "  secret: vm-bench-registry",
        "",
      ].join("\n"),
    );
    this.server = new ChildServer({
      name: "docker-registry",
      command: "docker-registry",
      args: ["serve", this.config],
      logFile: this.logFile,
      ready: { url: `http://${this.host}/v2/`, method: "GET", status: 200 },
    });
  }

  start(): void {
    mkdirSync(this.storage, { recursive: true });
    this.server.start();
  }

  stop(): void {
    this.server.stop();
  }

  /** Stops it, empties its storage, starts it again. */
  reset(): void {
    this.stop();
    rmSync(this.storage, { recursive: true, force: true });
    this.start();
  }

  /** Bytes of blobs stored (what the last pushes uploaded, since the last reset). */
  storedBytes(): number {
    const blobs = join(this.storage, "docker/registry/v2/blobs");
    let total = 0;
    try {
      for (const entry of readdirSync(blobs, { recursive: true, withFileTypes: true }))
        if (entry.isFile() && entry.name === "data")
          total += statSync(join(entry.parentPath, entry.name)).size;
    } catch {
      // nothing stored
    }
    return total;
  }

  /** Bytes of blobs the registry served since the last call, from its access log. */
  servedBytes(): number {
    const text = readFileSync(this.logFile, "utf8");
    const fresh = text.slice(this.logOffset);
    this.logOffset = text.length;
    let total = 0;
    for (const m of fresh.matchAll(/"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64} HTTP\/[\d.]+" 20[06] (\d+)/g))
      total += Number(m[1]);
    return total;
  }

  /** The compressed sizes of an image's layers, from its manifest in this registry. */
  layerBytes(repository: string, tag: string): number[] {
    const text = node(
      `fetch(process.argv[1], { headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" } })
        .then((r) => r.text()).then((t) => process.stdout.write(t))`,
      [`http://${this.host}/v2/${repository}/manifests/${tag}`],
    );
    return (JSON.parse(text) as { layers: { size: number }[] }).layers.map((l) => l.size);
  }

  dispose(): void {
    this.server.dispose();
    rmSync(this.root, { recursive: true, force: true });
  }
}

interface LayerTally {
  moved: number;
  skipped: number;
}

/** Wall time, peak RSS (KiB) and the --json result of one vm command. */
function vmTimed(
  vm: string,
  args: string[],
  options: SpawnSyncOptions,
): { seconds: number; rssKb: number; json: Record<string, unknown> } {
  const r = timedVm(vm, [...args, "--json"], options);
  return { seconds: r.seconds, rssKb: r.rssKb, json: JSON.parse(r.stdout) as Record<string, unknown> };
}

/** Each layer's last status in `docker push`/`docker pull` output (one line per change when not a TTY). */
function layerStatuses(output: string): Map<string, string> {
  const statuses = new Map<string, string>();
  for (const m of output.matchAll(/^([0-9a-f]{12}): (.+)$/gm)) statuses.set(m[1]!, m[2]!.trim());
  return statuses;
}

/** `docker push`/`pull` with its output, timed. */
function dockerTimed(args: string[], env: NodeJS.ProcessEnv): { seconds: number; output: string } {
  const start = performance.now();
  const output = run("docker", args, { env });
  return { seconds: (performance.now() - start) / 1000, output };
}

function mustMoveAll(what: string, tally: LayerTally, layers: number): void {
  if (tally.moved !== layers || tally.skipped !== 0)
    throw new Error(
      `bench: ${what} moved ${tally.moved} of ${layers} layers (${tally.skipped} skipped): not a full transfer`,
    );
}

export function benchRegistry(options: RegistryOptions): RegistryResults {
  const { vm, label, log } = options;
  const image = ensureImages(log).dev;
  const dir = mkdtempSync(join(tmpdir(), "vm-bench-registry-"));
  // No credentials at all: an empty docker config for vm and for docker.
  const dockerConfig = join(dir, "docker-config");
  mkdirSync(dockerConfig);
  const env = { ...options.env, DOCKER_CONFIG: dockerConfig };
  const dockerEnv = { ...process.env, DOCKER_CONFIG: dockerConfig };
  const second = secondEngineUp();
  const homeB = join(dir, "home-b");
  mkdirSync(homeB);
  const envB = { ...env, DOCKER_HOST: SECOND_ENGINE, XDG_CONFIG_HOME: homeB };
  const registryDir = join(dir, "registry");
  mkdirSync(registryDir);
  const registry = new Registry(registryDir);
  const vmRef = `${registry.host}/bench/vm:1`;
  const dockerRef = `${registry.host}/bench/docker:1`;
  const results: RegistryResults = { rows: [], absolute: [], memory: [], facts: {} };

  const forgetPulled = () => {
    spawnSync(vm, ["snapshot", "delete", `@${PULLED}`, "--force"], { env: envB });
    removeLabelledImages(SECOND_ENGINE, label);
  };
  /** Every name of ours on an engine for this registry (the engine names images by registry host). */
  const untagOurs = (host: string[]) => {
    const names = run("docker", [...host, "images", "--format", "{{.Repository}}:{{.Tag}}"])
      .split("\n")
      .filter((n) => n.startsWith(`${registry.host}/`) && !n.endsWith(":<none>"));
    if (names.length) spawnSync("docker", [...host, "rmi", ...names]);
  };

  try {
    // The snapshot to push: the dev image saved as a global snapshot, as the export rows make theirs.
    const df = join(dir, "Dockerfile");
    writeFileSync(df, `FROM ${image}\n`);
    run(vm, ["create", "--save-as", `@${SNAPSHOT}`, "--from-dockerfile", df, "--force"], { env });
    const tag = `vm-snapshot/global:${SNAPSHOT}`;
    const imageBytes = Number(run("docker", ["image", "inspect", "--format", "{{.Size}}", tag]));
    const layers = Number(run("docker", ["image", "inspect", "--format", "{{len .RootFS.Layers}}", tag]));
    run("docker", ["tag", tag, dockerRef]);
    registry.start();

    // 1. A full push to an empty registry, vm against docker.
    log(`bench: registry: push of ${image} to ${registry.host}, ${options.rounds} round(s)\n`);
    let pushRss = 0;
    const uploaded: Record<string, number[]> = { vm: [], docker: [] };
    const push = alternate(options.rounds, [
      {
        name: "vm snapshot push",
        before: () => registry.reset(),
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "push", `@${SNAPSHOT}`, vmRef], { env });
          mustMoveAll("vm snapshot push", r.json.layers as LayerTally, layers);
          if (r.json.metadataPresent !== false) throw new Error("bench: vm found its metadata already there");
          pushRss = Math.max(pushRss, r.rssKb);
          return r.seconds;
        },
        after: () => uploaded.vm!.push(registry.storedBytes()),
      },
      {
        name: "docker push",
        before: () => registry.reset(),
        measure: () => {
          const r = dockerTimed(["push", dockerRef], dockerEnv);
          const statuses = [...layerStatuses(r.output).values()];
          if (statuses.length !== layers || statuses.some((s) => s !== "Pushed"))
            throw new Error(`bench: docker push did not upload every layer:\n${r.output}`);
          return r.seconds;
        },
        after: () => uploaded.docker!.push(registry.storedBytes()),
      },
    ]);
    results.rows.push({
      name: "push vs docker push",
      vm: push["vm snapshot push"]!,
      baseline: push["docker push"]!,
      baselineName: "docker push (same image, empty registry)",
      target: 1.1,
    });

    // The registry as the pull and re-push rounds find it: vm's push (image and metadata), docker's tag.
    registry.reset();
    run(vm, ["snapshot", "push", `@${SNAPSHOT}`, vmRef], { env });
    run("docker", ["push", dockerRef], { env: dockerEnv });
    const compressed = registry.layerBytes("bench/vm", "1");
    const compressedTotal = compressed.reduce((a, b) => a + b, 0);

    // 2. Re-push of the unchanged snapshot: only checks, nothing to upload.
    log(`bench: registry: re-push, ${options.fastRounds} round(s)\n`);
    const repush = alternate(options.fastRounds, [
      {
        name: "vm snapshot push (again)",
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "push", `@${SNAPSHOT}`, vmRef], { env });
          const tally = r.json.layers as LayerTally;
          if (tally.moved !== 0 || r.json.metadataPresent !== true)
            throw new Error(`bench: the re-push moved something: ${JSON.stringify(r.json)}`);
          return r.seconds;
        },
      },
      {
        name: "docker push (again)",
        measure: () => timed("docker", ["push", dockerRef], { env: dockerEnv }),
      },
    ]);
    results.rows.push({
      name: "re-push vs docker push (pushed)",
      vm: repush["vm snapshot push (again)"]!,
      baseline: repush["docker push (again)"]!,
      baselineName: "docker push (already pushed)",
    });
    results.absolute.push({
      name: "re-push, unchanged snapshot",
      stats: repush["vm snapshot push (again)"]!,
      limit: 2,
    });
    results.memory.push({ name: "push", imageBytes, peakRssMb: pushRss / 1024 });

    // 3. A pull into the second engine, where none of the image's layers are before each round.
    const served: Record<string, number[]> = { vm: [], docker: [] };
    if (!second) {
      log(`bench: registry: no second engine at ${SECOND_ENGINE}; the pull rows need one (skipped)\n`);
    } else {
      log(`bench: registry: pull into ${SECOND_ENGINE}, ${options.rounds} round(s)\n`);
      let pullRss = 0;
      forgetPulled();
      registry.servedBytes();
      const pull = alternate(options.rounds, [
        {
          name: "vm snapshot pull",
          before: forgetPulled,
          measure: () => {
            const r = vmTimed(vm, ["snapshot", "pull", vmRef, "--name", PULLED], { env: envB });
            if (r.json.pulled !== true)
              throw new Error("bench: the engine had the image before vm pulled it");
            mustMoveAll("vm snapshot pull", r.json.layers as LayerTally, layers);
            pullRss = Math.max(pullRss, r.rssKb);
            return r.seconds;
          },
          after: () => served.vm!.push(registry.servedBytes()),
        },
        {
          name: "docker pull",
          before: forgetPulled,
          measure: () => {
            const r = dockerTimed(["-H", SECOND_ENGINE, "pull", vmRef], dockerEnv);
            const statuses = [...layerStatuses(r.output).values()];
            if (statuses.length !== layers || statuses.some((s) => /Already exists/.test(s)))
              throw new Error(`bench: docker pull did not download every layer:\n${r.output}`);
            return r.seconds;
          },
          after: () => served.docker!.push(registry.servedBytes()),
        },
      ]);
      for (const [who, bytes] of Object.entries(served))
        if (bytes.some((b) => b < compressedTotal))
          throw new Error(
            `bench: a ${who} pull downloaded less than the image's layers: ${bytes.join(", ")}`,
          );
      results.rows.push({
        name: "pull vs docker pull",
        vm: pull["vm snapshot pull"]!,
        baseline: pull["docker pull"]!,
        baselineName: "docker pull (same image, absent)",
        target: 1.1,
        slack: 1,
      });
      results.memory.push({ name: "pull", imageBytes, peakRssMb: pullRss / 1024 });
    }
    results.facts = {
      image,
      imageBytes,
      layers,
      compressedLayerBytes: compressed,
      registry: "docker-registry (Distribution) on loopback, plain HTTP, restarted on empty storage per push",
      pushEngine: run("docker", ["version", "--format", "{{.Server.Version}}"]),
      pullEngine: second
        ? run("docker", ["-H", SECOND_ENGINE, "version", "--format", "{{.Server.Version}}"])
        : null,
      rounds: options.rounds,
      fastRounds: options.fastRounds,
      storedBytesAfterPush: uploaded,
      servedBytesPerPull: served,
    };
    return results;
  } finally {
    if (second) forgetPulled();
    untagOurs([]);
    if (second) untagOurs(["-H", SECOND_ENGINE]);
    spawnSync(vm, ["snapshot", "delete", `@${SNAPSHOT}`, "--force"], { env });
    registry.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
