import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 in front of one server (test/helpers/file-server.ts, test/helpers/s3.ts),
 * that drops connections at chosen points of a download and counts what it passed.
 *
 * It works on bytes, not HTTP: an HTTPS client speaks TLS through it to the server behind (whose
 * certificate names 127.0.0.1 on any port), so the client's TLS and HTTP code are the real ones and
 * nothing in between terminates, buffers or rewrites anything. The price: the byte counts are of the
 * stream as it flows, response headers (and for HTTPS the TLS framing, about 0.2 %) included, and a byte
 * flipped inside TLS breaks the record's authentication (the client sees a TLS error, not wrong data).
 * For a flipped byte the client takes as data, put the proxy in front of a plain-HTTP server.
 *
 * Cuts (`cuts: [a, b, c]`): the first connection that has passed `a` bytes server→client is cut right
 * there (it gets exactly `a` bytes; then the next cut waits for a connection that passes `b` bytes of
 * its own, and so on); after the list, everything passes. Counting per connection, from its first byte,
 * means a short exchange (a HEAD, a 401) on a connection of its own never spends a cut, and that a cut
 * "at 50 % of the file" on a resumed connection that starts at 10 % is `0.4 * size` (plus its headers).
 * One cut at a time: two connections passing their threshold together are cut one after the other.
 */

/** How a cut ends the connection. */
export type CutMode =
  /** FIN to the client after exactly the bytes counted (the default): a clean close mid-body. */
  | "close"
  /** TCP RST: as a dropped link or a crashed server; the last bytes sent before it may be lost. */
  | "reset"
  /** Stop passing bytes but keep both connections open (until close()): a hung link, for timeouts. */
  | "stall";

export interface Cut {
  /** Bytes server→client the connection passes before it is cut. */
  after: number;
  mode?: CutMode;
}

export interface ByteFlip {
  /** Flip in a connection that opened after this many cuts happened (0: any connection). Default 1. */
  afterCut?: number;
  /** Offset of the byte to flip (XOR 0xff), counted in `in`. */
  offset: number;
  /**
   * "body" (default): from the end of the first HTTP header block (CRLF CRLF) the connection carries
   * server→client, which is meaningful for plain HTTP only; "stream": from the connection's first byte.
   */
  in?: "body" | "stream";
}

export interface CutProxyOptions {
  /** The server behind: a URL (its host and port; its scheme becomes the proxy URL's) or host/port. */
  target: string | URL | { host?: string; port: number };
  /** The cuts, in order (a number is `{ after: n }` with the default mode). */
  cuts?: Array<number | Cut>;
  /** Mode of the cuts that name none. Default "close". */
  mode?: CutMode;
  /** Flip one byte of one connection (once). */
  flip?: ByteFlip;
}

/** One connection through the proxy. */
export interface ProxyConnection {
  /** Its order of arrival, from 0. */
  index: number;
  /** Bytes passed server→client / client→server. */
  bytesFromServer: number;
  bytesToServer: number;
  /** Body bytes passed server→client after its first header block (-1 while none is complete). */
  bodyBytes: number;
  /** Which cut (0-based) ended it, and how; undefined when it was not cut. */
  cut: number | undefined;
  cutMode: CutMode | undefined;
  /** The stream offset of the byte the proxy flipped in it, if any. */
  flippedAt: number | undefined;
  /** How many cuts had happened when it opened. */
  cutsBefore: number;
  open: boolean;
}

export interface CutProxy {
  /** The proxy's origin, e.g. http://127.0.0.1:PORT (the target URL's scheme; "http" for host/port). */
  url: string;
  port: number;
  /** url + path (a leading slash is added when missing). */
  urlOf(path: string): string;
  /** Every connection so far, in order of arrival. */
  readonly connections: readonly ProxyConnection[];
  /** Server→client bytes, all connections together. */
  readonly bytesFromServer: number;
  readonly bytesToServer: number;
  /** How many cuts have happened. */
  readonly cutsDone: number;
  /** Whether the flip happened. */
  readonly flipped: boolean;
  /** Replaces the cuts still to come (cutsDone goes on counting from where it is). */
  setCuts(cuts: Array<number | Cut>): void;
  /** Stops accepting and destroys every connection (stalled ones too). */
  close(): Promise<void>;
}

/** Starts the proxy on 127.0.0.1 (a free port). */
export async function startCutProxy(options: CutProxyOptions): Promise<CutProxy> {
  let scheme = "http";
  let host: string;
  let port: number;
  if (typeof options.target === "string" || options.target instanceof URL) {
    const u = new URL(options.target);
    scheme = u.protocol.replace(/:$/, "");
    host = u.hostname.replace(/^\[|\]$/g, "");
    port = Number(u.port || (scheme === "https" ? 443 : 80));
  } else {
    host = options.target.host ?? "127.0.0.1";
    port = options.target.port;
  }
  const defaultMode = options.mode ?? "close";
  const toCut = (c: number | Cut): Required<Cut> =>
    typeof c === "number" ? { after: c, mode: defaultMode } : { after: c.after, mode: c.mode ?? defaultMode };
  let pending = (options.cuts ?? []).map(toCut);
  let cutsDone = 0;
  let flipped = false;
  const flip = options.flip ? { afterCut: 1, in: "body" as const, ...options.flip } : undefined;
  const connections: ProxyConnection[] = [];
  const sockets = new Set<Socket>();
  let fromServer = 0;
  let toServer = 0;

  const server = createServer((client) => {
    const info: ProxyConnection = {
      index: connections.length,
      bytesFromServer: 0,
      bytesToServer: 0,
      bodyBytes: -1,
      cut: undefined,
      cutMode: undefined,
      flippedAt: undefined,
      cutsBefore: cutsDone,
      open: true,
    };
    connections.push(info);
    const upstream = createConnection({ host, port });
    sockets.add(client).add(upstream);
    let tail = ""; // the last bytes seen while looking for the end of the first header block
    let stalled = false;

    const drop = () => {
      info.open = false;
      if (stalled) return; // kept until close()
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);

    client.on("data", (d: Buffer) => {
      info.bytesToServer += d.length;
      toServer += d.length;
      if (!upstream.write(d)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    client.on("drain", () => {
      if (!stalled) upstream.resume();
    });

    upstream.on("data", (data: Buffer) => {
      if (stalled) return;
      let chunk = data;
      const cut = pending[0];
      let cutHere = false;
      if (cut && info.bytesFromServer + chunk.length >= cut.after) {
        chunk = chunk.subarray(0, Math.max(0, cut.after - info.bytesFromServer));
        cutHere = true;
      }
      const streamStart = info.bytesFromServer;
      // Where the body starts (plain HTTP): after the first CRLF CRLF this connection carries.
      let bodyStartInChunk = -1;
      if (info.bodyBytes < 0) {
        const seen = tail + chunk.toString("latin1");
        const at = seen.indexOf("\r\n\r\n");
        if (at >= 0) {
          bodyStartInChunk = at + 4 - tail.length;
          info.bodyBytes = 0;
        } else tail = seen.slice(-3);
      } else bodyStartInChunk = 0;

      if (flip && !flipped && info.cutsBefore >= flip.afterCut && chunk.length > 0) {
        let index = -1;
        if (flip.in === "stream") index = flip.offset - streamStart;
        else if (bodyStartInChunk >= 0) index = bodyStartInChunk + (flip.offset - info.bodyBytes);
        if (index >= 0 && index < chunk.length && (flip.in === "stream" || index >= bodyStartInChunk)) {
          chunk = Buffer.from(chunk);
          chunk[index] = chunk[index]! ^ 0xff;
          flipped = true;
          info.flippedAt = streamStart + index;
        }
      }
      if (bodyStartInChunk >= 0) info.bodyBytes += chunk.length - bodyStartInChunk;
      info.bytesFromServer += chunk.length;
      fromServer += chunk.length;

      if (!cutHere) {
        if (!client.write(chunk)) upstream.pause();
        return;
      }
      pending.shift();
      info.cut = cutsDone++;
      info.cutMode = cut!.mode;
      if (cut!.mode === "stall") {
        stalled = true;
        if (chunk.length > 0) client.write(chunk);
        upstream.pause();
        client.pause();
        return;
      }
      if (cut!.mode === "reset") {
        client.write(chunk, () => {
          client.resetAndDestroy();
          upstream.destroy();
        });
        return;
      }
      client.end(chunk);
      upstream.destroy();
    });
    upstream.on("end", () => {
      if (!stalled) client.end();
    });
    client.on("end", () => {
      if (!stalled) upstream.end();
    });
  });

  await new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolvePromise());
  });
  const ownPort = (server.address() as AddressInfo).port;
  const origin = `${scheme}://127.0.0.1:${ownPort}`;
  let closing: Promise<void> | undefined;

  return {
    url: origin,
    port: ownPort,
    urlOf: (path) => origin + (path.startsWith("/") ? path : `/${path}`),
    connections,
    get bytesFromServer() {
      return fromServer;
    },
    get bytesToServer() {
      return toServer;
    },
    get cutsDone() {
      return cutsDone;
    },
    get flipped() {
      return flipped;
    },
    setCuts(cuts) {
      pending = cuts.map(toCut);
    },
    close() {
      closing ??= new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
      return closing;
    },
  };
}
