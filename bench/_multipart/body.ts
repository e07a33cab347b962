// Copyright 2026 the wirestream authors. MIT license.
// The multipart body the benchmarks parse: form fields and binary files, generated as it is
// read, so that no parser pays for holding the whole body and peak RSS shows what each parser
// itself keeps. Every chunk is a fresh buffer (as a socket read gives), filled from a 1 MiB
// pool of random bytes; the same layout and chunk boundaries for every parser.

const MiB = 1_048_576;

/** The boundary: the shape a browser uses (WebKit, 38 characters). */
export const BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gWq";
/** The Content-Type of the body. */
export const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

/** One part of the layout. */
export interface PartSpec {
  name: string;
  /** Null for a field. */
  filename: string | null;
  size: number;
}

/**
 * The layout of a body of about `mib` MiB: per 200 MiB, one 64 MiB file, 8 of 8 MiB, 64 of 1
 * MiB, 512 of 16 KiB and 512 text fields of 1 KiB between them (scaled for other sizes).
 */
export function layout(mib: number): PartSpec[] {
  const scale = mib / 200;
  const parts: PartSpec[] = [];
  let field = 0;
  const add = (count: number, size: number) => {
    for (let i = 0; i < Math.max(1, Math.round(count * (size > MiB ? 1 : scale))); i++) {
      const fileSize = size > MiB ? Math.max(16_384, Math.round(size * scale)) : size;
      parts.push({ name: `file${parts.length}`, filename: `f${parts.length}.bin`, size: fileSize });
      parts.push({ name: `field${field++}`, filename: null, size: 1024 });
    }
  };
  add(1, 64 * MiB);
  add(8, 8 * MiB);
  add(64, MiB);
  add(512, 16_384);
  return parts;
}

/** The layout of an upload of about `mib` MiB: four files of a quarter each, four fields. */
export function uploadLayout(mib: number): PartSpec[] {
  const parts: PartSpec[] = [];
  for (let i = 0; i < 4; i++) {
    parts.push({ name: `field${i}`, filename: null, size: 1024 });
    parts.push({ name: `file${i}`, filename: `f${i}.bin`, size: Math.round((mib * MiB) / 4) });
  }
  return parts;
}

const encoder = new TextEncoder();

function headOf(part: PartSpec, first: boolean): Uint8Array {
  const disposition = part.filename === null
    ? `form-data; name="${part.name}"`
    : `form-data; name="${part.name}"; filename="${part.filename}"`;
  const type = part.filename === null ? "" : "Content-Type: application/octet-stream\r\n";
  return encoder.encode(
    `${first ? "" : "\r\n"}--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`,
  );
}

/** The pieces of the body in order: heads, contents (views of the pool), the close line. */
function* pieces(parts: readonly PartSpec[], pool: Uint8Array, text: Uint8Array) {
  let at = 0;
  for (const [i, part] of parts.entries()) {
    yield headOf(part, i === 0);
    if (part.filename === null) {
      yield text.subarray(0, part.size);
      continue;
    }
    for (let left = part.size; left > 0;) {
      const n = Math.min(left, pool.length - at);
      yield pool.subarray(at, at + n);
      at = (at + n) % pool.length;
      left -= n;
    }
  }
  yield encoder.encode(`\r\n--${BOUNDARY}--\r\n`);
}

/** What a parser must find in the body. */
export interface Expected {
  /** The body's length. */
  bodyBytes: number;
  parts: number;
  files: number;
  /** The bytes of all part contents. */
  contentBytes: number;
}

/** The random pool (seeded, so every process has the same bytes) and a field's text. */
function pools(): [Uint8Array, Uint8Array] {
  const pool = new Uint8Array(MiB);
  let a = 0x5eed;
  for (let i = 0; i < pool.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    pool[i] = (t ^ (t >>> 14)) >>> 24;
  }
  const text = encoder.encode("lorem ipsum dolor sit amet, ".repeat(40));
  return [pool, text];
}

/** The body's expected counts. */
export function expected(parts: readonly PartSpec[]): Expected {
  const [pool, text] = pools();
  let bodyBytes = 0;
  for (const piece of pieces(parts, pool, text)) bodyBytes += piece.length;
  return {
    bodyBytes,
    parts: parts.length,
    files: parts.filter((p) => p.filename !== null).length,
    contentBytes: parts.reduce((n, p) => n + p.size, 0),
  };
}

/** The body as a stream of fresh chunks of `chunkSize` bytes, generated as they are read. */
export function bodyStream(
  parts: readonly PartSpec[],
  chunkSize = 65_536,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const [pool, text] = pools();
  const source = pieces(parts, pool, text);
  let piece: Uint8Array | null = null, offset = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      const chunk = new Uint8Array(chunkSize);
      let filled = 0;
      while (filled < chunkSize) {
        if (piece === null || offset === piece.length) {
          const next = source.next();
          if (next.done) break;
          piece = next.value;
          offset = 0;
          continue;
        }
        const n = Math.min(chunkSize - filled, piece.length - offset);
        chunk.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
      }
      if (filled > 0) controller.enqueue(filled === chunkSize ? chunk : chunk.slice(0, filled));
      if (filled < chunkSize) controller.close();
    },
  }, { highWaterMark: 0 });
}
