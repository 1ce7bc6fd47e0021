import type { Command } from "commander";
import { currentProject, type CommandContext } from "../../cli/context.ts";
import type { ProjectContext } from "../../env/project.ts";
import { parseSnapshotInput } from "../../lib/names.ts";
import type { RemoteOptions } from "../../snapshot-file/input.ts";

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

/**
 * How a command reads a snapshot file at an http(s) URL (--authorization, else VM_HTTP_AUTHORIZATION) or
 * an s3:// path (--endpoint, --path-style, and the AWS SDK's own environment).
 */
export function remoteOptions(ctx: CommandContext, options: Record<string, unknown>): RemoteOptions {
  const given = typeof options.authorization === "string" ? options.authorization : undefined;
  return {
    authorization: given ?? (ctx.env.VM_HTTP_AUTHORIZATION || undefined),
    endpoint: typeof options.endpoint === "string" ? options.endpoint : undefined,
    pathStyle: options.pathStyle === true,
    env: ctx.env,
    onNote: (text) => ctx.io.stderr.write(text),
  };
}

/** The options of every command that reads a snapshot file from a URL. */
export function withRemoteOptions(cmd: Command): Command {
  return cmd
    .option(
      "--authorization <value>",
      "an Authorization header for a file at an https:// URL, e.g. 'Bearer TOKEN' (or VM_HTTP_AUTHORIZATION); never shown",
    )
    .option("--endpoint <url>", "for s3:// paths: an S3-compatible store's URL (or AWS_ENDPOINT_URL_S3)")
    .option("--path-style", "for s3:// paths: the bucket in the URL's path, not its host name");
}
