import fs from 'node:fs';
import path from 'node:path';

/**
 * A minimal streaming ustar writer: regular files and directories, read from disk as they are
 * sent (the sizes are known, so nothing is held in memory). Enough for the journal bundle, which
 * any `tar` unpacks.
 */

const BLOCK = 512;

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value.slice(0, length), offset, length, 'utf8');
}

function octal(buf: Buffer, offset: number, length: number, value: number): void {
  // length - 1 octal digits, NUL-terminated.
  field(buf, offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
}

export function tarHeader(name: string, size: number, type: 'file' | 'dir', mtime: Date): Buffer {
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(base) > 100) {
    // ustar splits long names at a slash: prefix (155) + name (100).
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar: name too long: ${name}`);
  }
  if (size >= 8 ** 11) throw new Error(`tar: ${name} is larger than 8 GiB`);
  const h = Buffer.alloc(BLOCK, 0);
  field(h, 0, 100, base);
  octal(h, 100, 8, type === 'dir' ? 0o755 : 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, type === 'dir' ? 0 : size);
  octal(h, 136, 12, Math.floor(mtime.getTime() / 1000));
  field(h, 148, 8, '        '); // checksum is computed with spaces here
  field(h, 156, 1, type === 'dir' ? '5' : '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'regent');
  field(h, 297, 32, 'regent');
  field(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/**
 * The tar stream of `files` (paths relative to `root`, in order; directories end with "/"),
 * each placed under `top/` in the archive, followed by the two zero blocks that end a tar.
 */
export async function* tarStream(root: string, top: string, files: readonly string[]): AsyncGenerator<Buffer> {
  const now = new Date();
  yield tarHeader(`${top}/`, 0, 'dir', now);
  for (const rel of files) {
    if (rel.endsWith('/')) {
      yield tarHeader(`${top}/${rel}`, 0, 'dir', now);
      continue;
    }
    const file = path.join(root, rel);
    const { size } = fs.statSync(file);
    yield tarHeader(`${top}/${rel}`, size, 'file', now);
    let sent = 0;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 })) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (sent !== size) throw new Error(`tar: ${rel} changed while it was sent`);
    if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK), 0);
  }
  yield Buffer.alloc(2 * BLOCK, 0);
}
