import { resolve, dirname } from "node:path";
import { services } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { ExitCode, VmError } from "../errors.ts";
import { describeRef, validateSnapshotName, type SnapshotRef } from "../snapshot/names.ts";
import { currentProject, parseBuildArgs } from "./snapshot-shared.ts";

export const snapshotCreateCommand: CommandDef = {
  path: ["snapshot", "create"],
  summary: "Save the project's environment (or a Dockerfile build) as a snapshot; @name makes it global",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .argument("<name>", 'snapshot name; @name for a global (base) snapshot usable as vm.box: "@name"')
      .option("-d, --description <text>", "what is in it", "")
      .option("--quiesce", "pause the environment during the commit (always unpaused afterwards)")
      .option("--project <name>", "the project whose environment to snapshot (default: from vm.yaml)")
      .option("-f, --force", "overwrite a snapshot of that name (replaced only once the new one is complete)")
      .option("--from-dockerfile <path>", "build this Dockerfile instead of committing an environment")
      .option("--context <dir>", "build context for --from-dockerfile (default: the Dockerfile's folder)")
      .option("--build-arg <KEY=VALUE...>", "build arguments for --from-dockerfile"),
  run: async (ctx, args, options) => {
    const input = args[0]!;
    const global = input.startsWith("@");
    const name = global ? input.slice(1) : input;
    validateSnapshotName(name);
    const dockerfile = options.fromDockerfile as string | undefined;
    const { project, config } = await currentProject(ctx, options.project);
    let ref: SnapshotRef;
    if (global) ref = { scope: "global", name };
    else if (project) ref = { scope: "project", project, name };
    else {
      throw new VmError(
        "PROJECT_UNKNOWN",
        `Snapshot '${name}' would belong to a project, and there is none here`,
        {
          hint: `Run it in a project folder, pass --project, or make it global: vm snapshot create @${name}${dockerfile ? " --from-dockerfile " + dockerfile : ""}`,
          exitCode: ExitCode.usage,
        },
      );
    }
    if (!dockerfile && !project) {
      throw new VmError(
        "PROJECT_UNKNOWN",
        "There is no project here whose environment could be snapshotted",
        {
          hint: "Run it in a project folder (or pass --config/--project), or build one: vm snapshot create @NAME --from-dockerfile PATH",
          exitCode: ExitCode.usage,
        },
      );
    }
    const common = { ref, description: options.description as string, force: options.force === true };
    const projectDir = config?.dir;
    const { createFromDockerfile, createFromEnvironment } = await import("../snapshot/create.ts");
    const metadata = dockerfile
      ? await createFromDockerfile(services(ctx), {
          ...common,
          dockerfile: resolve(ctx.cwd, dockerfile),
          context: resolve(
            ctx.cwd,
            (options.context as string | undefined) ?? dirname(resolve(ctx.cwd, dockerfile)),
          ),
          buildArgs: parseBuildArgs(options.buildArg, ctx.env),
          ...(projectDir ? { projectDir } : {}),
        })
      : await createFromEnvironment(services(ctx), {
          ...common,
          project: project!,
          quiesce: options.quiesce === true,
          ...(projectDir ? { projectDir } : {}),
        });
    const use = ref.scope === "global" ? `vm.box: "@${name}"` : `vm snapshot restore ${name}`;
    return {
      json: metadata,
      text: `Created snapshot ${describeRef(ref)} (${metadata.image_tag})\n  use it: ${use}   |   share it: vm snapshot export ${input}\n`,
    };
  },
};
