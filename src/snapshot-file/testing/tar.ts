/**
 * Test support: tar archives built byte by byte from the repository's own header encoder, and read back
 * with its own walker, so fixtures need no engine and no tar binary.
 */
import { END_OF_ARCHIVE, encodeHeader, padding } from "../../lib/tar-header.ts";
import { TarWalker } from "../../lib/tar-walk.ts";

export type ItemType = "file" | "directory" | "symlink" | "link" | "fifo" | "char" | "contiguous";

export interface TarItem {
  name: string;
  data?: Buffer | string;
  /** Default "file". Anything but a file or directory is written with size 0. */
  type?: ItemType;
  linkname?: string;
  /** A PAX extended header before the entry, with these records (e.g. { path: "../x" }). */
  pax?: Record<string, string>;
}

const FLAG: Record<ItemType, string> = {
  file: "0",
  directory: "5",
  symlink: "2",
  link: "1",
  fifo: "6",
  char: "3",
  contiguous: "7",
};

/** Sets a header's type flag (and link name) and makes its checksum right again. */
export function retype(header: Buffer, flag: string, linkname?: string): Buffer {
  const out = Buffer.from(header);
  out.write(flag, 156, 1, "latin1");
  if (linkname !== undefined) {
    out.fill(0, 157, 257);
    out.write(linkname, 157, 100, "utf8");
  }
  return resum(out);
}

/** Recomputes a ustar header's checksum after an edit. */
export function resum(header: Buffer): Buffer {
  header.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "latin1");
  return header;
}

function paxRecords(records: Record<string, string>): Buffer {
  let out = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    // The length prefix counts itself: find the fixed point.
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    out += `${length}${body}`;
  }
  return Buffer.from(out);
}

/** One entry as tar bytes: (PAX header,) header, data, padding. */
export function tarEntry(item: TarItem): Buffer {
  const parts: Buffer[] = [];
  if (item.pax) {
    const record = paxRecords(item.pax);
    parts.push(
      retype(encodeHeader({ name: "PaxHeaders.0/x", size: record.length }), "x"),
      record,
      padding(record.length),
    );
  }
  const type = item.type ?? "file";
  const data = type === "file" ? Buffer.from(item.data ?? "") : Buffer.alloc(0);
  let header = encodeHeader({
    name: item.name,
    size: data.length,
    ...(type === "directory" ? { type: "directory" as const } : {}),
  });
  if (type !== "file" && type !== "directory") header = retype(header, FLAG[type], item.linkname ?? "");
  parts.push(header, data, padding(data.length));
  return Buffer.concat(parts);
}

/** A whole archive: the entries, then (unless `end` is false) the two zero blocks. */
export function tarBytes(items: TarItem[], options: { end?: boolean } = {}): Buffer {
  const parts = items.map(tarEntry);
  if (options.end !== false) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export interface ReadItem {
  name: string;
  type: string;
  data: Buffer;
}

/** Reads an uncompressed tar back into its entries (PAX and GNU names applied). */
export function readTar(bytes: Buffer): ReadItem[] {
  const items: ReadItem[] = [];
  const walker = new TarWalker((entry) => {
    const chunks: Buffer[] = [];
    const item: ReadItem = { name: entry.name, type: entry.type, data: Buffer.alloc(0) };
    items.push(item);
    return {
      data: (chunk) => void chunks.push(Buffer.from(chunk)),
      end: () => {
        item.data = Buffer.concat(chunks);
      },
    };
  });
  walker.push(bytes, []);
  walker.finish();
  return items;
}
