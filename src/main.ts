import { CommanderError } from "commander";
import { commands } from "./commands/index.ts";
import type { CommandContext, CommandResult } from "./cli/context.ts";
import type { Io } from "./lib/io.ts";
import { formatError } from "./cli/output.ts";
import { buildProgram, usageExit } from "./cli/program.ts";
import { discoverEndpoint } from "./engine/transport/connection.ts";
import { DockerEngine } from "./engine/docker/engine.ts";
import type { Engine } from "./engine/engine.ts";
import { FailedEngine } from "./engine/failed.ts";
import type { RemoteBoxes } from "./env/services.ts";

/** The registry client loads only when a vm.box names a registry snapshot. */
const remoteBoxes: RemoteBoxes = {
  resolve: async (ref, services) =>
    (await import("./snapshot/registry/box.ts")).registryBoxes.resolve(ref, services),
};

export interface MainOptions {
  io: Io;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** argv (without node and script) → run one command → print its result or error → the exit code. */
export async function main(argv: string[], { io, env, cwd }: MainOptions): Promise<number> {
  const debug = env.VM_DEBUG === "1";
  const engine = createEngine(env);
  let result: CommandResult | undefined;
  let jsonWanted = false;
  const program = buildProgram(commands, { io }, async (def, args, options) => {
    jsonWanted = options.json === true;
    const commandCtx: CommandContext = {
      cwd,
      env,
      io,
      engine,
      configOption: options.config as string | undefined,
      projectOption: options.project as string | undefined,
      remoteBoxes,
    };
    result = await def.run(commandCtx, args, options);
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    if (!result) return 0;
    if (jsonWanted && result.json !== undefined) io.stdout.write(JSON.stringify(result.json, null, 2) + "\n");
    else if (result.text) io.stdout.write(result.text);
    return result.exitCode ?? 0;
  } catch (caught) {
    if (caught instanceof CommanderError) return usageExit(caught);
    const error = engine.explain(caught);
    io.stderr.write(formatError(error, debug));
    return error instanceof Error && "exitCode" in error && typeof error.exitCode === "number"
      ? error.exitCode
      : 1;
  } finally {
    engine.close();
  }
}

/** The engine client, built once. A bad DOCKER_HOST is reported by the first command that needs the engine. */
function createEngine(env: NodeJS.ProcessEnv): Engine {
  try {
    return new DockerEngine(discoverEndpoint({ env }));
  } catch (caught) {
    return new FailedEngine(caught, { url: env.DOCKER_HOST ?? "", source: "DOCKER_HOST" });
  }
}
