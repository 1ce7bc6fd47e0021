import { currentProject, type CommandContext } from "../../cli/context.ts";
import type { ProjectContext } from "../../env/project.ts";
import { parseSnapshotInput } from "../../lib/names.ts";

/**
 * The project a snapshot command works in. A global name (`@name`) needs none, so no vm.yaml is read for
 * it (an unrelated, broken one in the folder must not stop `vm snapshot export @base`), unless the command
 * needs a project anyway (`--include-volumes`).
 */
export async function snapshotProject(
  ctx: CommandContext,
  input: string,
  needsProject = false,
): Promise<ProjectContext | undefined> {
  if (parseSnapshotInput(input).global && !needsProject && ctx.projectOption === undefined) return undefined;
  return currentProject(ctx);
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

/** How a command reads a snapshot file at an http(s) URL: --authorization, else VM_HTTP_AUTHORIZATION. */
export function remoteOptions(
  ctx: CommandContext,
  options: Record<string, unknown>,
): { authorization: string | undefined; onNote: (text: string) => void } {
  const given = typeof options.authorization === "string" ? options.authorization : undefined;
  return {
    authorization: given ?? (ctx.env.VM_HTTP_AUTHORIZATION || undefined),
    onNote: (text) => ctx.io.stderr.write(text),
  };
}

export const AUTHORIZATION_OPTION = [
  "--authorization <value>",
  "an Authorization header for a file at an https:// URL, e.g. 'Bearer TOKEN' (or VM_HTTP_AUTHORIZATION); never shown",
] as const;
