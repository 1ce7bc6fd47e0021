import { statfs } from "node:fs/promises";
import { findConfig } from "../config/discover.ts";
import { loadConfig } from "../config/load.ts";
import { formatBytes } from "../lib/units.ts";
import type { Engine } from "../engine/engine.ts";
import { VmError } from "../errors.ts";

export interface Check {
  name: string;
  ok: boolean;
  /** A warning is shown but does not fail the doctor. */
  warning?: boolean;
  detail: string;
  hint?: string;
}

const LOW_DISK_BYTES = 10 * 1024 ** 3;

/** Checks what vm needs, in order, without stopping at the first problem. */
export async function diagnose(
  engine: Engine,
  cwd: string,
  configOption: string | undefined,
): Promise<Check[]> {
  const checks: Check[] = [];
  const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
  const nodeOk = major > 22 || (major === 22 && minor >= 15);
  checks.push({
    name: "node",
    ok: nodeOk,
    detail: `Node.js ${process.versions.node}`,
    ...(nodeOk ? {} : { hint: "vm needs Node.js 22.15 or newer" }),
  });

  const file = findConfig(cwd, configOption);
  if (file) {
    try {
      const config = await loadConfig(file);
      checks.push({ name: "config", ok: true, detail: `${file} (project '${config.project.name}')` });
      for (const warning of config.warnings)
        checks.push({ name: "config", ok: true, warning: true, detail: warning });
    } catch (error) {
      checks.push({
        name: "config",
        ok: false,
        detail: (error as Error).message,
        hint: "Fix vm.yaml as the lines above say",
      });
    }
  } else {
    checks.push({
      name: "config",
      ok: true,
      warning: true,
      detail: `no vm.yaml in ${cwd} or its parents`,
      hint: "`vm create` writes a starter",
    });
  }

  checks.push({
    name: "engine endpoint",
    ok: true,
    detail: `${engine.endpoint.url} (from ${engine.endpoint.source})`,
  });
  try {
    const info = await engine.info();
    checks.push({
      name: "engine",
      ok: true,
      detail: `Docker ${info.serverVersion} (API ${info.apiVersion}), ${info.os}/${info.architecture}, ${info.cpus} CPUs, ${formatBytes(info.memoryBytes)}`,
    });
    checks.push({
      name: "image store",
      ok: true,
      detail:
        info.imageStore === "containerd"
          ? `containerd image store (${info.storageDriver})`
          : `classic image store (${info.storageDriver})`,
    });
    checks.push(await diskCheck(info.rootDir));
  } catch (error) {
    checks.push({
      name: "engine",
      ok: false,
      detail: (error as Error).message,
      ...(error instanceof VmError && error.hint ? { hint: error.hint } : {}),
    });
  }
  return checks;
}

async function diskCheck(rootDir: string): Promise<Check> {
  try {
    const stats = await statfs(rootDir);
    const free = stats.bavail * stats.bsize;
    const low = free < LOW_DISK_BYTES;
    return {
      name: "disk",
      ok: true,
      ...(low
        ? { warning: true, hint: "Snapshots and builds need room: free some with `docker system prune`" }
        : {}),
      detail: `${formatBytes(free)} free in ${rootDir}`,
    };
  } catch {
    return {
      name: "disk",
      ok: true,
      warning: true,
      detail: `cannot see ${rootDir || "the engine's data folder"} from here (remote engine?)`,
    };
  }
}
