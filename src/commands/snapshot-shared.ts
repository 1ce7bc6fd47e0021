import type { CommandContext } from "../cli/context.ts";
import { findConfig } from "../config/discover.ts";
import { loadConfig, type Config } from "../config/load.ts";

/** The project a snapshot command works in: --project, else the vm.yaml in reach (if any). */
export async function currentProject(
  ctx: CommandContext,
  explicit: unknown,
): Promise<{ project: string | undefined; config: Config | undefined }> {
  const file = findConfig(ctx.cwd, ctx.configOption);
  const config = file ? await loadConfig(file) : undefined;
  const project = typeof explicit === "string" ? explicit : config?.project.name;
  return { project, config };
}

/** --build-arg K=V, repeated. */
export function parseBuildArgs(values: unknown, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (values as string[] | undefined) ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) out[pair] = env[pair] ?? "";
    else out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
