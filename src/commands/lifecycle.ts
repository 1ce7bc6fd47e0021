import { requireConfig, services, type CommandContext } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import {
  destroyEnvironment,
  restartEnvironment,
  startEnvironment,
  stopEnvironment,
} from "../env/environment.ts";

export const startCommand: CommandDef = {
  path: ["start"],
  summary: "Start the project's stopped environment",
  usesConfig: true,
  run: async (ctx) => {
    const config = await requireConfig(ctx);
    const env = await startEnvironment(ctx.engine, config);
    return { text: `Started ${env.name}\n` };
  },
};

export const stopCommand: CommandDef = {
  path: ["stop"],
  summary: "Stop the project's environment (its files and volumes stay)",
  usesConfig: true,
  run: async (ctx) => {
    const config = await requireConfig(ctx);
    const env = await stopEnvironment(ctx.engine, config);
    return { text: `Stopped ${env.name}\n` };
  },
};

export const restartCommand: CommandDef = {
  path: ["restart"],
  summary: "Stop and start the project's environment",
  usesConfig: true,
  run: async (ctx) => {
    const config = await requireConfig(ctx);
    const env = await restartEnvironment(ctx.engine, config);
    return { text: `Restarted ${env.name}\n` };
  },
};

export const destroyCommand: CommandDef = {
  path: ["destroy"],
  summary:
    "Remove the project's environment, its built box image and named volumes (the project folder is untouched)",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .option("-f, --force", "do not ask for confirmation")
      .option("--keep-volumes", "keep the project's named volumes (caches) for the next vm create"),
  run: async (ctx, _args, options) => {
    const config = await requireConfig(ctx);
    if (options.force !== true && ctx.io.stdin.isTTY && ctx.io.stderr.isTTY) {
      const { confirm } = await import("../cli/prompt.ts");
      if (!(await confirm(ctx.io, `Remove the environment of '${config.project.name}'?`)))
        return { text: "Nothing removed\n" };
    }
    const result = await destroyEnvironment(ctx.engine, config, {
      keepVolumes: options.keepVolumes === true,
    });
    const removed = [
      result.name,
      ...result.images.map((i) => `image ${i}`),
      ...result.volumes.map((v) => `volume ${v}`),
    ];
    let kept = result.keptVolumes.length > 0 ? `Kept volumes ${result.keptVolumes.join(", ")}\n` : "";
    if (result.keptImages.length > 0)
      kept += await keptImagesNote(ctx, config.project.name, result.keptImages);
    return { text: `Destroyed ${removed.join(", ")}\n${kept}` };
  },
};

/** Why a box image stayed, and what removes it: the project's snapshots are built on it. */
async function keptImagesNote(ctx: CommandContext, project: string, images: string[]): Promise<string> {
  const snapshots = (await services(ctx).snapshots.list()).filter((s) => s.project === project);
  if (snapshots.length === 0)
    return `Kept image ${images.join(", ")} (untagged): other images are built on it; \`docker image prune\` removes it once they are gone\n`;
  const names = snapshots.map((s) => s.name);
  const deletes = names.map((n) => `vm snapshot delete ${n} --project ${project}`).join("; ");
  return (
    `Kept image ${images.join(", ")} (untagged): snapshot${names.length > 1 ? "s" : ""} ${names.join(", ")} of this project ` +
    `${names.length > 1 ? "are" : "is"} built on it, and it goes with ${names.length > 1 ? "them" : "it"}: ${deletes}\n`
  );
}
