import type { CommandDef } from "../cli/command.ts";
import { diagnose } from "../env/doctor.ts";
import { ExitCode } from "../errors.ts";

export const doctorCommand: CommandDef = {
  path: ["doctor"],
  summary: "Check Node.js, vm.yaml, the engine, its image store and disk space",
  usesConfig: true,
  json: true,
  run: async (ctx) => {
    const checks = await diagnose(ctx.engine, ctx.cwd, ctx.configOption);
    const lines = checks.map((c) => {
      const mark = !c.ok ? "✗" : c.warning ? "!" : "✓";
      return `${mark} ${c.name.padEnd(16)} ${c.detail}${c.hint ? `\n  ${"".padEnd(16)} hint: ${c.hint}` : ""}`;
    });
    const failed = checks.some((c) => !c.ok);
    return { json: checks, text: lines.join("\n") + "\n", exitCode: failed ? ExitCode.engine : 0 };
  },
};
