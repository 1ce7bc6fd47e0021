import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerSummary, Engine } from "../engine/engine.ts";
import { systemErrorCode } from "../errors.ts";
import { guardInterrupts } from "../lib/interrupt.ts";
import { elsewhere, ownerGone, ownerTag, parseOwner, type Owner } from "../lib/owner.ts";

/**
 * Pausing an environment for a consistent commit, so that no interruption leaves it paused: Ctrl-C and
 * SIGTERM unpause it before vm exits, and a marker file names the vm that paused it, so that after a
 * SIGKILL (which nothing can catch) the next vm that finds it paused with a dead owner unpauses it.
 */
export async function whilePaused<T>(
  engine: Engine,
  markerDir: string,
  containerId: string,
  work: () => Promise<T>,
): Promise<T> {
  const marker = join(markerDir, containerId);
  await mkdir(markerDir, { recursive: true });
  await writeFile(marker, `${ownerTag()}\n`);
  const unpause = async () => {
    await engine.containers.unpause(containerId);
    await rm(marker, { force: true });
  };
  return guardInterrupts(unpause, async () => {
    await engine.containers.pause(containerId);
    try {
      return await work();
    } finally {
      await unpause();
    }
  });
}

/**
 * Unpauses an environment a killed vm left paused (its marker names a process that no longer runs).
 * Returns the environment as it now is; one paused by a live vm or by someone else is left alone.
 */
export async function recoverPaused(
  engine: Engine,
  markerDir: string,
  env: ContainerSummary,
  log: (text: string) => void,
): Promise<ContainerSummary> {
  if (env.state !== "paused") return env;
  const marker = join(markerDir, env.id);
  let owner: Owner | undefined;
  try {
    owner = parseOwner(await readFile(marker, "utf8"));
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT") return env;
    throw error;
  }
  // Another host's vm may still run (a shared config home): only this host's dead owners are reclaimed.
  const mine = owner !== undefined && owner.pid === process.pid && !elsewhere(owner);
  if (owner && !mine && !ownerGone(owner)) return env;
  await engine.containers.unpause(env.id);
  await rm(marker, { force: true });
  log(
    `Unpaused ${env.name}: an interrupted vm snapshot create --quiesce (pid ${owner?.pid ?? "unknown"}) had left it paused\n`,
  );
  return { ...env, state: "running" };
}

/** Where the pause markers live: beside the snapshot store, in the same config home. */
export function pauseMarkerDir(storeRoot: string): string {
  return join(storeRoot, ".paused");
}
