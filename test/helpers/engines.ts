import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** A real engine the suite runs against, as the docker CLI and vm reach it. */
export interface TestEngine {
  name: string;
  host: string;
  imageStore: "classic" | "containerd";
}

const CANDIDATES = [
  { name: "engine1", host: "unix:///var/run/docker.sock" },
  { name: "engine2", host: "unix:///var/run/vm-docker2.sock" },
];

let cached: TestEngine[] | undefined;

/** Engines that answer now. The suite fails when there is none: integration tests never fake the engine. */
export function availableEngines(): TestEngine[] {
  if (cached) return cached;
  cached = [];
  for (const c of CANDIDATES) {
    if (!existsSync(c.host.slice("unix://".length))) continue;
    const res = spawnSync("docker", ["-H", c.host, "info", "--format", "{{json .DriverStatus}}"], {
      encoding: "utf8",
      timeout: 20_000,
    });
    if (res.status !== 0) continue;
    cached.push({
      ...c,
      imageStore: res.stdout.includes("io.containerd.snapshotter") ? "containerd" : "classic",
    });
  }
  if (cached.length === 0)
    throw new Error("No Docker engine answers: run `bash scripts/setup` (or scripts/engines start) first");
  return cached;
}

export function primaryEngine(): TestEngine {
  return availableEngines()[0]!;
}

/** Runs the docker CLI against an engine: the suite's independent view of what vm did. */
export function docker(engine: TestEngine, args: string[], input?: string): string {
  for (let attempt = 1; ; attempt++) {
    try {
      return execFileSync("docker", ["-H", engine.host, ...args], {
        encoding: "utf8",
        stdio: ["pipe", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
        ...(input !== undefined ? { input } : {}),
      }).trim();
    } catch (error) {
      // The containerd store fails a whole image listing while another test file removes an image it is
      // listing ("content digest sha256:...: not found"); the next listing no longer sees that image.
      const stderr = (error as { stderr?: string | Buffer }).stderr?.toString() ?? "";
      if (args[0] !== "images" || !/content digest .* not found/.test(stderr) || attempt >= 10) throw error;
      spawnSync("sleep", ["0.2"]);
    }
  }
}

export function dockerTry(
  engine: TestEngine,
  args: string[],
): { status: number; stdout: string; stderr: string } {
  const res = spawnSync("docker", ["-H", engine.host, ...args], { encoding: "utf8" });
  return { status: res.status ?? 1, stdout: res.stdout.trim(), stderr: res.stderr.trim() };
}
