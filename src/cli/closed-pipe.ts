import type { Writable } from "node:stream";
import { CLOSED_PIPE_EXIT } from "../lib/sink.ts";

/**
 * `vm list | head -1`, `vm --help | less` quit early: the next write to the pipe fails with EPIPE, and
 * Node turns that 'error' event into a crash with a stack trace. A closed pipe is the reader's choice,
 * not vm's failure: the rest of the output is dropped (the stream is destroyed, later writes go nowhere),
 * the command still ends cleanly, and the exit status is the one `yes | head` leaves, 141 (unless the
 * command failed on its own). Other stream errors stay errors.
 */
export function quietOnClosedPipes(streams: Writable[], proc: NodeJS.Process = process): void {
  let closed = false;
  for (const stream of streams)
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      closed = true;
    });
  // A pipe write fails after the command has returned (the write is asynchronous): decide at exit.
  proc.on("exit", (code) => {
    if (closed && code === 0) proc.exitCode = CLOSED_PIPE_EXIT;
  });
}
