import { services, type CommandContext } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { findConfig } from "../config/discover.ts";
import { loadConfig } from "../config/load.ts";
import { writeStarterConfig } from "../config/starter.ts";
import { createEnvironment } from "../env/environment.ts";

export const createCommand: CommandDef = {
  path: ["create"],
  summary: "Build or resolve the box, then create and start the project's environment",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd.option("-f, --force", "re-create the environment when it exists (named volumes are kept)"),
  run: async (ctx: CommandContext, _args, options) => {
    let file = findConfig(ctx.cwd, ctx.configOption);
    if (!file) {
      const starter = await writeStarterConfig(ctx.cwd);
      file = starter.file;
      ctx.io.stderr.write(
        `No vm.yaml found: wrote a starter ${file} (box: ${starter.box}); edit it to taste.\n`,
      );
    }
    const config = await loadConfig(file);
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
