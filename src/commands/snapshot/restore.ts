import { requireConfig, services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { createEnvironment } from "../../env/environment.ts";
import { describeRef } from "../../snapshot-file/names.ts";
import { findSnapshot, resolveSnapshotImage } from "../../store/resolve.ts";

export const snapshotRestoreCommand: CommandDef = {
  path: ["snapshot", "restore"],
  summary: "Re-create the project's environment from a snapshot (the project folder stays mounted)",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .argument("<name>", "snapshot name (@name: the global one)")
      .option("-f, --force", "replace the project's existing environment"),
  run: async (ctx, args, options) => {
    const config = await requireConfig(ctx);
    const svc = services(ctx);
    const { ref } = await findSnapshot(svc.snapshots, args[0]!, config.project.name, svc.log);
    const image = await resolveSnapshotImage(svc.engine, svc.snapshots, ref);
    const result = await createEnvironment(svc, config, {
      force: options.force === true,
      image: { ref: image.image, description: image.description },
    });
    return {
      text: `Restored ${result.name} from snapshot ${describeRef(ref)}\n  project folder ${config.dir} is at ${config.project.workspacePath}\n`,
    };
  },
};
