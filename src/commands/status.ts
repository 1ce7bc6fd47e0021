import { requireConfig } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { ago } from "../cli/output.ts";
import { formatBytes } from "../lib/units.ts";
import { inspectEnvironment, recordedOn } from "../env/environment.ts";

export const statusCommand: CommandDef = {
  path: ["status"],
  summary: "Show the state of the project's environment",
  usesConfig: true,
  json: true,
  run: async (ctx) => {
    const config = await requireConfig(ctx);
    const env = await inspectEnvironment(ctx.engine, config);
    const status = {
      project: config.project.name,
      config: config.file,
      container: env.name,
      id: env.id.slice(0, 12),
      state: env.state.status,
      box: recordedOn(env).box,
      image: env.image,
      started_at: env.state.running ? env.state.startedAt : null,
      memory_bytes: env.memoryBytes || null,
      cpus: env.nanoCpus ? env.nanoCpus / 1e9 : null,
      workspace: config.project.workspacePath,
      ports: [
        ...new Set(
          env.ports.map(
            (p) =>
              `${p.hostIp && p.hostIp !== "0.0.0.0" && p.hostIp !== "::" ? p.hostIp + ":" : ""}${p.hostPort}->${p.container}`,
          ),
        ),
      ],
      volumes: env.mounts
        .filter((m) => m.type === "volume")
        .map((m) => `${m.name ?? m.source}:${m.destination}`),
    };
    const lines = [
      `Project:   ${status.project} (${status.config})`,
      `Container: ${status.container} (${status.id})`,
      `State:     ${status.state}${env.state.running ? `, up since ${ago(new Date(env.state.startedAt))}` : ""}`,
      `Box:       ${status.box}`,
      `Workspace: ${config.dir} -> ${status.workspace}`,
      `Memory:    ${status.memory_bytes ? formatBytes(status.memory_bytes) : "unlimited"}`,
      `CPUs:      ${status.cpus ?? "unlimited"}`,
    ];
    if (status.ports.length) lines.push(`Ports:     ${status.ports.join(", ")}`);
    if (status.volumes.length) lines.push(`Volumes:   ${status.volumes.join(", ")}`);
    return { json: status, text: lines.join("\n") + "\n" };
  },
};
