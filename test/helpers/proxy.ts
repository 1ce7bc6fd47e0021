import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A unix socket that forwards to a real engine, and can be cut: every connection through it is destroyed
 * and it stops answering, which is what vm sees when the engine goes away (a crash, a restart, a VM that
 * sleeps). `bytesToEngine` and `bytesFromEngine` let a test cut at a chosen point of a transfer.
 */
export class EngineProxy {
  readonly host: string;
  bytesToEngine = 0;
  bytesFromEngine = 0;
  private readonly dir: string;
  private readonly sockets = new Set<Socket>();
  private readonly server;

  private constructor(target: string) {
    this.dir = mkdtempSync(join(tmpdir(), "vm-proxy-"));
    const path = join(this.dir, "engine.sock");
    this.host = `unix://${path}`;
    this.server = createServer((client) => {
      const upstream = createConnection(target);
      this.sockets.add(client).add(upstream);
      client.on("data", (d: Buffer) => (this.bytesToEngine += d.length));
      upstream.on("data", (d: Buffer) => (this.bytesFromEngine += d.length));
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    this.server.listen(path);
  }

  static async start(engineHost: string): Promise<EngineProxy> {
    const proxy = new EngineProxy(engineHost.replace(/^unix:\/\//, ""));
    await new Promise((resolve) => proxy.server.once("listening", resolve));
    return proxy;
  }

  /** Waits until `predicate` holds (checked every 10 ms), then cuts every connection and stops answering. */
  async cutWhen(predicate: (proxy: EngineProxy) => boolean, timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.cut();
    return predicate(this);
  }

  cut(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }

  close(): void {
    this.cut();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
