import { dirname, resolve } from "node:path";
import { services, type CommandContext } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import type { CommandResult } from "../cli/context.ts";
import { findConfig } from "../config/discover.ts";
import { formatWarnings, loadConfig } from "../config/load.ts";
import { writeStarterConfig } from "../config/starter.ts";
import { createEnvironment } from "../env/environment.ts";
import { VmError } from "../errors.ts";
import { validateSnapshotName } from "../snapshot-file/names.ts";
import { parseBuildArgs } from "./snapshot/shared.ts";
import { parseSnapshotInput } from "../lib/names.ts";

export const createCommand: CommandDef = {
  path: ["create"],
  summary: "Build or resolve the box, then create and start the project's environment",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .option("-f, --force", "re-create the environment when it exists (named volumes are kept)")
      .option(
        "--save-as <@name>",
        "with --from-dockerfile: build once and save as a global snapshot, no environment",
      )
      .option("--from-dockerfile <path>", "the Dockerfile to build for --save-as")
      .option("--build-arg <KEY=VALUE...>", "build arguments for --from-dockerfile")
      .option(
        "--record-build-args",
        "keep the build args' values in the snapshot's metadata (default: names only)",
      )
      .option("-d, --description <text>", "description of the --save-as snapshot", ""),
  run: async (ctx: CommandContext, _args, options) => {
    if (options.saveAs !== undefined || options.fromDockerfile !== undefined) return saveAsBase(ctx, options);
    let file = findConfig(ctx.cwd, ctx.configOption);
    if (!file) {
      const starter = await writeStarterConfig(ctx.cwd);
      file = starter.file;
      ctx.io.stderr.write(
        `No vm.yaml found: wrote a starter ${file} (box: ${starter.box}); edit it to taste.\n`,
      );
    }
    const config = await loadConfig(file);
    if (config.warnings.length > 0) ctx.io.stderr.write(formatWarnings(config));
    const result = await createEnvironment(services(ctx), config, { force: options.force === true });
    const verb = result.replaced ? "Re-created" : "Created";
    return {
      json: { ...result, project: config.project.name, config: config.file },
      text:
        `${verb} environment ${result.name} for project '${config.project.name}' from ${result.box}\n` +
        `  project folder ${config.dir} is at ${config.project.workspacePath}\n` +
        `  next: vm ssh   |   vm exec -- <command>   |   vm status\n`,
    };
  },
};

/** `vm create --save-as @name --from-dockerfile PATH`: the build-once step of the base-image workflow. */
async function saveAsBase(ctx: CommandContext, options: Record<string, unknown>): Promise<CommandResult> {
  const saveAs = options.saveAs as string | undefined;
  const dockerfile = options.fromDockerfile as string | undefined;
  if (!saveAs || !dockerfile) {
    throw new VmError("USAGE", "--save-as and --from-dockerfile go together", {
      hint: "vm create --save-as @NAME --from-dockerfile ./Dockerfile",
    });
  }
  const { name } = parseSnapshotInput(saveAs);
  validateSnapshotName(name);
  const path = resolve(ctx.cwd, dockerfile);
  const { createFromDockerfile } = await import("../snapshot/create/create.ts");
  const metadata = await createFromDockerfile(services(ctx), {
    ref: { scope: "global", name },
    description: options.description as string,
    force: options.force === true,
    dockerfile: path,
    context: dirname(path),
    buildArgs: parseBuildArgs(options.buildArg, ctx.env),
    recordBuildArgs: options.recordBuildArgs === true,
  });
  return {
    json: metadata,
    text: `Saved snapshot @${name} (${metadata.image_tag})\n  use it: vm.box: "@${name}"   |   share it: vm snapshot export @${name}\n`,
  };
}
