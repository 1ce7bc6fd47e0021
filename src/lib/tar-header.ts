/**
 * ustar headers for the archives vm writes. One header is always exactly 512 bytes, whatever the size
 * (sizes past 8 GiB use the base-256 form GNU tar, bsdtar, Go and tar-stream read), so a writer can reserve
 * a header's place before it knows the size and fill it in afterwards.
 */
export const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777;

export interface HeaderFields {
  name: string;
  size: number;
  mode?: number;
  mtime?: Date;
  type?: "file" | "directory";
}

export function encodeHeader(fields: HeaderFields): Buffer {
  const header = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(fields.name);
  header.write(name, 0, 100, "utf8");
  writeOctal(header, fields.mode ?? (fields.type === "directory" ? 0o755 : 0o644), 100, 8);
  writeOctal(header, 0, 108, 8);
  writeOctal(header, 0, 116, 8);
  if (fields.size <= MAX_OCTAL_SIZE) writeOctal(header, fields.size, 124, 12);
  else writeBase256(header, fields.size, 124, 12);
  writeOctal(header, Math.floor((fields.mtime ?? new Date(0)).getTime() / 1000), 136, 12);
  header.write(fields.type === "directory" ? "5" : "0", 156, 1, "ascii");
  header.write("ustar\u000000", 257, 8, "ascii");
  header.write("root", 265, 32, "ascii");
  header.write("root", 297, 32, "ascii");
  if (prefix) header.write(prefix, 345, 155, "utf8");
  header.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "ascii");
  return header;
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

function splitName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: "", name: path };
  // ustar splits a long path at a '/' into prefix (155) and name (100).
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  throw new Error(`tar path too long for a ustar header: ${path}`);
}

function writeOctal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(value.toString(8).padStart(length - 1, "0") + "\u0000", offset, length, "ascii");
}

function writeBase256(buf: Buffer, value: number, offset: number, length: number): void {
  let rest = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    buf[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  buf[offset] = 0x80;
}
