import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const CONFIG_NAME = "vm.yaml";

/**
 * Which vm.yaml a command uses: `--config FILE` when given, else ./vm.yaml, else the nearest parent
 * folder's. Returns undefined when there is none.
 */
export function findConfig(cwd: string, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return resolve(cwd, explicit);
  let dir = resolve(cwd);
  for (;;) {
    const candidate = join(dir, CONFIG_NAME);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
