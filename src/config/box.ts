import { existsSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { VmError } from "../errors.ts";
import { parseSnapshotInput, SNAPSHOT_NAME, SNAPSHOT_NAME_RULE } from "../lib/names.ts";
import type { RawBox } from "./schema.ts";

/** What `vm.box` asks for, resolved against the folder of the vm.yaml that says it. */
export type BoxSpec =
  | { kind: "dockerfile"; dockerfile: string; context: string; args: Record<string, string> }
  | { kind: "snapshot"; name: string }
  /** `@registry/repository:tag`: a snapshot in an OCI registry, pulled on first use. */
  | { kind: "registry"; ref: string }
  | { kind: "image"; ref: string };

/** Whether a box string names a Dockerfile rather than an image reference. */
function looksLikeDockerfile(value: string, baseDir: string): boolean {
  if (value.startsWith("./") || value.startsWith("../") || isAbsolute(value)) return true;
  const name = basename(value);
  const dockerfileName = /^Dockerfile([.-].*)?$/.test(name) || name.endsWith(".dockerfile");
  return dockerfileName && existsSync(resolve(baseDir, value)) && statSync(resolve(baseDir, value)).isFile();
}

export function parseBox(box: RawBox, baseDir: string, where: string): BoxSpec {
  if (typeof box === "object") {
    const dockerfile = resolve(baseDir, box.dockerfile);
    const context = box.context === undefined ? dirname(dockerfile) : resolve(baseDir, box.context);
    const args = Object.fromEntries(Object.entries(box.args ?? {}).map(([k, v]) => [k, String(v)]));
    return { kind: "dockerfile", dockerfile, context, args };
  }
  const value = box.trim();
  const snapshot = parseSnapshotInput(value);
  if (snapshot.global) {
    const { name } = snapshot;
    // A snapshot name never holds a "/"; a registry reference always does (registry/repository[:tag]).
    if (name.includes("/")) return { kind: "registry", ref: name };
    if (!SNAPSHOT_NAME.test(name)) {
      throw new VmError("CONFIG_INVALID", `${where}: vm.box '${value}' is not a valid snapshot name`, {
        hint: `Snapshot names use ${SNAPSHOT_NAME_RULE}, e.g. @vibe-base`,
      });
    }
    return { kind: "snapshot", name };
  }
  if (looksLikeDockerfile(value, baseDir)) {
    const dockerfile = resolve(baseDir, value);
    return { kind: "dockerfile", dockerfile, context: dirname(dockerfile), args: {} };
  }
  return { kind: "image", ref: value };
}

export function describeBox(box: BoxSpec): string {
  switch (box.kind) {
    case "dockerfile":
      return `Dockerfile ${box.dockerfile}`;
    case "snapshot":
      return `snapshot @${box.name}`;
    case "registry":
      return `snapshot @${box.ref}`;
    case "image":
      return `image ${box.ref}`;
  }
}
