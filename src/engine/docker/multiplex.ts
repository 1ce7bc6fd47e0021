import { once } from "node:events";
import type { Readable, Writable } from "node:stream";

/**
 * Splits the engine's multiplexed stdout/stderr stream (exec and logs without a TTY): each frame is an
 * 8-byte header — stream type (1 = stdout, 2 = stderr), three zero bytes, a big-endian uint32 length —
 * followed by that many bytes. Honours back-pressure on both outputs.
 */
export async function demultiplex(source: Readable, stdout: Writable, stderr: Writable): Promise<void> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    buffer = buffer.length === 0 ? (chunk as Buffer) : Buffer.concat([buffer, chunk as Buffer]);
    while (buffer.length >= 8) {
      const size = buffer.readUInt32BE(4);
      if (buffer.length < 8 + size) break;
      const type = buffer[0];
      const payload = buffer.subarray(8, 8 + size);
      buffer = buffer.subarray(8 + size);
      const target = type === 2 ? stderr : stdout;
      if (!target.write(payload)) await once(target, "drain");
    }
  }
}
