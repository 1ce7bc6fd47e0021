import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { deleteSnapshot } from "../../snapshot/manage.ts";
import { describeRef } from "../../snapshot-file/names.ts";
import { findSnapshot } from "../../store/resolve.ts";
import { snapshotProject } from "./shared.ts";

export const snapshotDeleteCommand: CommandDef = {
  path: ["snapshot", "delete"],
  summary: "Delete a snapshot: its metadata and its engine image",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .alias("rm")
      .argument("<name>", "snapshot name (@name: the global one)")
      .option(
        "-f, --force",
        "delete even when containers use the image (the image stays until they are gone)",
      ),
  run: async (ctx, args, options) => {
    const svc = services(ctx);
    const project = await snapshotProject(ctx, args[0]!);
    const { ref, metadata } = await findSnapshot(svc.snapshots, args[0]!, project?.name, svc.log);
    const result = await deleteSnapshot(svc, ref, metadata, options.force === true);
    const image = result.imageRemoved
      ? ` and its image ${metadata.image_tag}`
      : result.users.length
        ? `; its image stays while ${result.users.join(", ")} use${result.users.length === 1 ? "s" : ""} it`
        : "";
    return { text: `Deleted snapshot ${describeRef(ref)}${image}\n` };
  },
};
