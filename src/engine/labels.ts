import { VmError } from "../errors.ts";

/** Label keys on everything vm creates. vm finds its things by these labels, never by parsing names. */
export const Label = {
  managed: "dev.vm.managed",
  role: "dev.vm.role",
  project: "dev.vm.project",
  config: "dev.vm.config",
  workspace: "dev.vm.workspace",
  box: "dev.vm.box",
  snapshot: "dev.vm.snapshot",
  volume: "dev.vm.volume",
  version: "dev.vm.version",
  /** host/pid of the vm process that made a temporary thing, so a later vm can clean up after a killed one. */
  owner: "dev.vm.owner",
} as const;

export type Role = "environment" | "box" | "volume" | "snapshot" | "snapshot-volume";

/**
 * Extra labels from VM_LABELS ("key=value,key=value"), added to everything vm creates, so CI jobs and
 * test suites can find and remove what a run made.
 */
export function extraLabels(env: NodeJS.ProcessEnv): Record<string, string> {
  const raw = env.VM_LABELS?.trim();
  if (!raw) return {};
  const labels: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    const key = eq > 0 ? pair.slice(0, eq).trim() : "";
    if (!key || (Object.values(Label) as string[]).includes(key)) {
      throw new VmError("VM_LABELS_INVALID", `VM_LABELS entry '${pair}' is not a key=value pair vm may add`, {
        hint: "Write VM_LABELS as key=value pairs separated by commas; vm's own keys (dev.vm.managed, dev.vm.project, ...) are reserved",
      });
    }
    labels[key] = pair.slice(eq + 1).trim();
  }
  return labels;
}

export function managedLabels(
  role: Role,
  extra: Record<string, string>,
  more: Record<string, string> = {},
): Record<string, string> {
  return { ...extra, ...more, [Label.managed]: "true", [Label.role]: role };
}
