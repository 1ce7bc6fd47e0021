import { basename } from "node:path";
import { VmError } from "../errors.ts";

/**
 * The naming rules, in one place: what a snapshot or project may be called, and what `@name` means.
 * vm.yaml's schema, the store, the file format and the commands all take them from here.
 */

/** A snapshot name: one path component of lowercase letters, digits, '.', '_', '-', starting with a letter or digit. */
export const SNAPSHOT_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** The snapshot-name rule in words, for messages. */
export const SNAPSHOT_NAME_RULE =
  "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit (max 128)";

/**
 * A project name (it becomes container and volume names, and a folder of the snapshot store, where
 * `global` holds the global snapshots: so no project may be called that).
 */
export const PROJECT_NAME = /^(?!global$)[a-z0-9][a-z0-9_.-]{0,62}$/;

/** The project-name rule in words, for messages. */
export const PROJECT_NAME_RULE =
  "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit (max 63), and not 'global'";

/** Refuses a project name given on the command line (--project) that breaks the rule. */
export function validateProjectName(name: string): void {
  if (!PROJECT_NAME.test(name))
    throw new VmError("PROJECT_NAME_INVALID", `'${name}' is not a valid project name`, {
      hint: `Project names use ${PROJECT_NAME_RULE}, as project.name in vm.yaml`,
    });
}

/**
 * A snapshot as written on the command line or in vm.box: `@name` is the global snapshot `name`; a name
 * without `@` is left to the caller (a project's snapshot, or the global one).
 */
export function parseSnapshotInput(input: string): { global: boolean; name: string } {
  return input.startsWith("@") ? { global: true, name: input.slice(1) } : { global: false, name: input };
}

/** The project name a folder gives when vm.yaml names none: its name made to fit, else "project". */
export function projectNameFromFolder(dir: string): string {
  const slug = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 63);
  return PROJECT_NAME.test(slug) ? slug : "project";
}
