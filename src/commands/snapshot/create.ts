import { resolve, dirname } from "node:path";
import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { VmError } from "../../errors.ts";
import { describeRef, validateSnapshotName, type SnapshotRef } from "../../snapshot-file/names.ts";
import { parseBuildArgs, snapshotProject } from "./shared.ts";
import { parseSnapshotInput } from "../../lib/names.ts";

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
      .option("-f, --force", "overwrite a snapshot of that name (replaced only once the new one is complete)")
      .option("--from-dockerfile <path>", "build this Dockerfile instead of committing an environment")
      .option("--context <dir>", "build context for --from-dockerfile (default: the Dockerfile's folder)")
      .option("--build-arg <KEY=VALUE...>", "build arguments for --from-dockerfile")
      .option(
        "--record-build-args",
        "keep the build args' values in the snapshot's metadata (default: names only)",
      ),
  run: async (ctx, args, options) => {
    const input = args[0]!;
    const { global, name } = parseSnapshotInput(input);
    validateSnapshotName(name);
    const dockerfile = options.fromDockerfile as string | undefined;
    // A build from a Dockerfile into a global snapshot needs no project; everything else does.
    const context = global && dockerfile ? undefined : await snapshotProject(ctx, input, true);
    const project = context?.name;
    const config = context?.config;
    if (!project && !(global && dockerfile)) {
      throw new VmError(
        "PROJECT_UNKNOWN",
        `There is no project here whose environment could be saved as snapshot '${input}': no vm.yaml in ${ctx.cwd} or its parents, and no environment was created from this folder`,
        {
          hint: dockerfile
            ? `Build it as a global snapshot instead: vm snapshot create @${name} --from-dockerfile ${dockerfile}`
            : `Run it in the project's folder, or pass --config FILE or --project NAME (vm list --all shows the projects); or build a global snapshot from a Dockerfile: vm snapshot create @${name} --from-dockerfile PATH`,
        },
      );
    }
    const ref: SnapshotRef = global
      ? { scope: "global", name }
      : { scope: "project", project: project!, name };
    const common = { ref, description: options.description as string, force: options.force === true };
    const projectDir = config?.dir;
    const { createFromDockerfile, createFromEnvironment } = await import("../../snapshot/create/create.ts");
    const metadata = dockerfile
      ? await createFromDockerfile(services(ctx), {
          ...common,
          dockerfile: resolve(ctx.cwd, dockerfile),
          context: resolve(
            ctx.cwd,
            (options.context as string | undefined) ?? dirname(resolve(ctx.cwd, dockerfile)),
          ),
          buildArgs: parseBuildArgs(options.buildArg, ctx.env),
          recordBuildArgs: options.recordBuildArgs === true,
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
