import { createHash } from "node:crypto";
import { SNAPSHOT_NAME, SNAPSHOT_NAME_RULE } from "../lib/names.ts";
import { VmError } from "../errors.ts";

export { SNAPSHOT_NAME } from "../lib/names.ts";

/** Where a snapshot lives: the global scope (`@name`, what boxes and imports use) or one project's. */
export type SnapshotRef =
  { scope: "global"; name: string } | { scope: "project"; project: string; name: string };

export function validateSnapshotName(name: string): void {
  if (!SNAPSHOT_NAME.test(name)) {
    throw new VmError("SNAPSHOT_NAME_INVALID", `'${name}' is not a valid snapshot name`, {
      hint: `Use ${SNAPSHOT_NAME_RULE}, e.g. vibe-base`,
    });
  }
}

export function describeRef(ref: SnapshotRef): string {
  return ref.scope === "global" ? `@${ref.name}` : `${ref.name} (project ${ref.project})`;
}

/** The engine repository a snapshot's image is tagged in; the tag is the snapshot's name. */
export function imageRepo(ref: SnapshotRef): string {
  if (ref.scope === "global") return "vm-snapshot/global";
  // Project names may hold sequences a repository path may not ("a..b", "x-"): sanitise, and keep
  // distinct projects apart with a short hash of the exact name.
  const safe = ref.project.replace(/[._-]+/g, "-").replace(/^-+|-+$/g, "") || "p";
  const hash = createHash("sha256").update(ref.project).digest("hex").slice(0, 8);
  return `vm-snapshot/project-${safe}-${hash}`;
}

export function imageTag(ref: SnapshotRef): string {
  return `${imageRepo(ref)}:${ref.name}`;
}

/** The label value that points an image back to its snapshot. */
export function refLabel(ref: SnapshotRef): string {
  return ref.scope === "global" ? `global/${ref.name}` : `project/${ref.project}/${ref.name}`;
}
