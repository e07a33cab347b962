// Copyright 2026 the wirestream authors. MIT license.
// A reference frame decoder written from the text of RFC 6455 §5.2–5.5, for fuzz oracles. It
// reads the whole input at once and favours plainness over speed: BigInt for the 64-bit
// length, one check per rule in the order the RFC states the fields. It shares no code with
// lib/websocket.

/** The decoder configuration a reference run follows (see FrameDecoderOptions). */
export interface ReferenceFrameOptions {
  /** "server" receives masked frames, "client" unmasked ones (§5.1). */
  role: "server" | "client";
  /** The largest data frame payload accepted, in bytes; a larger announced length is a 1009. */
  maxFrameSize: number;
  /** The RSV bits a negotiated extension gives a meaning (§5.2); the others must be 0. */
  allowedRsv: { rsv1: boolean; rsv2: boolean; rsv3: boolean };
}

/** A frame as the reference reads it. */
export interface ReferenceFrame {
  opcode: number;
  fin: boolean;
  rsv: boolean[];
  length: number;
  payload: Uint8Array;
}

/** The frames read, then the close code of the failure that ended the input, if any. */
export interface ReferenceOutcome {
  frames: ReferenceFrame[];
  closeCode: number | null;
}

/**
 * Reads `input` as a sequence of frames. The first rule broken ends the run with its close
 * code: 1002 (protocol error, §7.4.1) for every rule of §5, 1009 for a length over
 * `maxFrameSize`, which the library documents as "checked from the header before any payload
 * is buffered", so it applies once the header is whole, even if the payload never comes.
 */
export function referenceDecodeFrames(
  input: Uint8Array,
  options: ReferenceFrameOptions,
): ReferenceOutcome {
  const frames: ReferenceFrame[] = [];
  let at = 0;
  const fail = (closeCode: number): ReferenceOutcome => ({ frames, closeCode });
  while (at < input.length) {
    // §5.2: FIN, RSV1–3 and a 4-bit opcode, then MASK and a 7-bit payload length.
    if (input.length - at < 2) return fail(1002); // the input ended inside a header
    const byte0 = input[at]!, byte1 = input[at + 1]!;
    const fin = (byte0 & 0b1000_0000) !== 0;
    const rsv = [
      (byte0 & 0b0100_0000) !== 0,
      (byte0 & 0b0010_0000) !== 0,
      (byte0 & 0b0001_0000) !== 0,
    ];
    const opcode = byte0 & 0b0000_1111;
    const mask = (byte1 & 0b1000_0000) !== 0;
    const length7 = byte1 & 0b0111_1111;
    const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    const headerSize = 2 + lengthBytes + (mask ? 4 : 0);
    if (input.length - at < headerSize) return fail(1002); // the input ended inside a header

    // §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for non-zero
    // values. If a nonzero value is received and none of the negotiated extensions defines
    // the meaning of such a nonzero value, the receiving endpoint MUST _Fail_".
    const allowed = [options.allowedRsv.rsv1, options.allowedRsv.rsv2, options.allowedRsv.rsv3];
    if (rsv.some((set, i) => set && !allowed[i])) return fail(1002);
    // §5.2: 0x3–0x7 and 0xB–0xF "are reserved for further non-control frames" / "control
    // frames"; an unknown opcode MUST fail the connection.
    const known = [0x0, 0x1, 0x2, 0x8, 0x9, 0xa];
    if (!known.includes(opcode)) return fail(1002);
    // §5.1: a server MUST close on an unmasked frame; a client MUST close on a masked one.
    if (mask !== (options.role === "server")) return fail(1002);
    // §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT
    // be fragmented." Control frames are the opcodes with the most significant bit set.
    const control = (opcode & 0b1000) !== 0;
    if (control && !fin) return fail(1002);
    if (control && length7 > 125) return fail(1002);

    // §5.2: 126 means a 16-bit length follows, 127 a 64-bit length whose "most significant
    // bit MUST be 0"; both in network byte order.
    let length = BigInt(length7);
    if (lengthBytes > 0) {
      length = 0n;
      for (let i = 0; i < lengthBytes; i++) length = length * 256n + BigInt(input[at + 2 + i]!);
    }
    // "The minimal number of bytes MUST be used to encode the length" binds the sender; §5.2
    // names no receiver action for it and the decoder's doc does not list it among its
    // checks, so a longer form than needed is read as the length it gives.
    if (lengthBytes === 8 && length >= 2n ** 63n) return fail(1002);
    // maxFrameSize doc: "The largest payload accepted in one data frame", "`Infinity` lifts
    // the limit up to 2^53 − 1", and "Control frames are held to RFC 6455's 125 bytes
    // whatever this is" (checked above).
    const limit = Math.min(options.maxFrameSize, Number.MAX_SAFE_INTEGER);
    if (!control && length > BigInt(limit)) return fail(1009);

    // §5.3: the payload is masked with a 32-bit key; octet i is XORed with key octet i MOD 4.
    const key = input.subarray(at + 2 + lengthBytes, at + headerSize);
    const start = at + headerSize;
    if (BigInt(input.length - start) < length) return fail(1002); // the input ended inside a payload
    const payload = input.slice(start, start + Number(length));
    if (mask) { for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!; }
    frames.push({ opcode, fin, rsv, length: payload.length, payload });
    at = start + payload.length;
  }
  return { frames, closeCode: null };
}
