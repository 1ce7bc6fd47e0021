import type { Readable, Writable } from "node:stream";

/** The process's standard streams, as a command sees them (tests pass their own). */
export interface Io {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable & { isTTY?: boolean };
}
