import { readFile } from "node:fs/promises";
import { z } from "zod";
import { VmError, systemErrorCode } from "../errors.ts";
import { parseYamlSource, schemaPaths, validate, type SourceKind } from "./yaml-source.ts";

/**
 * $XDG_CONFIG_HOME/vm/settings.yaml: vm's own settings for this user. Validated like vm.yaml, because a
 * setting that is misread must not quietly mean its default: `require_signature: yes` (a string in YAML
 * 1.2) or a typo such as `require_signatures` would otherwise turn signature checks off.
 */
export const settingsSchema = z.strictObject(
  {
    require_signature: z
      .boolean({ error: "expected true or false" })
      .optional()
      .describe("vm snapshot import refuses files that are not signed by a trusted key"),
  },
  { error: "expected a mapping of settings (require_signature)" },
);

export type Settings = z.infer<typeof settingsSchema>;

const KIND: SourceKind = {
  code: "SETTINGS",
  hint: "Fix the lines above: settings.yaml takes `require_signature: true` or `false` (see docs/security.md)",
};
const KNOWN = schemaPaths(settingsSchema);

/** The settings in `file`; a missing file means the defaults, one that is not valid is an exit-3 error. */
export async function loadSettings(file: string): Promise<Settings> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT") return {};
    throw new VmError(
      "SETTINGS_UNREADABLE",
      `Cannot read ${file} (${systemErrorCode(error) ?? String(error)})`,
      {
        hint: "Make it a readable file (or remove it: without one, vm uses its defaults)",
      },
    );
  }
  return parseSettings(text, file);
}

export function parseSettings(text: string, file: string): Settings {
  const source = parseYamlSource(text, file, KIND);
  return validate(settingsSchema, source, KIND, { known: KNOWN });
}
