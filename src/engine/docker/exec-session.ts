import { once } from "node:events";
import { Writable, type Duplex } from "node:stream";
import { VmError } from "../../errors.ts";
import type { ExecOptions } from "../engine.ts";
import { demultiplex } from "./multiplex.ts";

/** Keeps the first `limit` bytes written to it. */
export class Collector extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly limit: number;
  constructor(limit: number) {
    super();
    this.limit = limit;
  }
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    if (this.size < this.limit) {
      const part = chunk.subarray(0, this.limit - this.size);
      this.chunks.push(part);
      this.size += part.length;
    }
    callback();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** Carries one exec session: our stdin to the socket, the socket to our stdout/stderr, until the process ends. */
export async function pumpSession(socket: Duplex, options: ExecOptions): Promise<void> {
  const { stdin } = options;
  const onData = (chunk: Buffer) => {
    if (!socket.write(chunk)) {
      stdin?.pause();
      socket.once("drain", () => stdin?.resume());
    }
  };
  // Closing our half of the connection is how the process's stdin gets EOF.
  const onEnd = () => socket.end();
  if (stdin) {
    stdin.on("data", onData);
    stdin.once("end", onEnd);
  }
  try {
    if (options.tty) {
      for await (const chunk of socket) {
        if (!options.stdout.write(chunk as Buffer)) await once(options.stdout, "drain");
      }
    } else {
      await demultiplex(socket, options.stdout, options.stderr);
    }
  } catch (error) {
    throw new VmError(
      "EXEC_STREAM_FAILED",
      `The command's output stream broke: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  } finally {
    if (stdin) {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.pause();
    }
    socket.destroy();
  }
}
