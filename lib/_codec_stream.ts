// Copyright 2026 the wirestream authors. MIT license.
// A decoder's synchronous core run as a pair of streams, for the `…DecoderStream` classes.
//
// A `TransformStream` would do, but for one thing: when `transform` throws, the stream errors
// its readable side at once, and a WHATWG error discards every chunk still queued there. A
// chunk that holds a close frame and then a protocol violation would lose the close frame;
// one that ends a valid message and then breaks the coding would lose the message. Here the
// readable side errors only once the output decoded before the error has been read. The
// rest is a `TransformStream`'s behaviour with its default strategies: a write waits until
// the readable side is read (high-water marks 1 and 0), cancelling the readable side errors
// the writable one, and closing the writable side closes the readable one after its queue.

/** Where a decoder core delivers its output. */
export interface CodecSink<O> {
  /** Delivers one output chunk. */
  enqueue(chunk: O): void;
}

/** The two sides of a decoder run as a stream. */
export interface CodecStreams<I, O> {
  /** The decoder's output. */
  readonly readable: ReadableStream<O>;
  /** The decoder's input. */
  readonly writable: WritableStream<I>;
}

/** A decoder's core, as {@linkcode codecStreams} drives it. */
export interface CodecCore<I, O> {
  /** Decodes one input chunk into the sink; throws on bad input. */
  push(chunk: I, sink: CodecSink<O>): void;
  /** Runs when the input ends; throws when it ended too soon. */
  end(): void;
  /** Told once when the streams fail: bad input, an aborted input, a cancelled output. */
  failed?(reason: unknown): void;
}

/**
 * Runs a decoder core as streams. An error, from the core or from the input side's abort,
 * reaches a reader after the chunks queued before it. With `bytes` (what the input is, for
 * messages) an input chunk that is not a `Uint8Array` fails both sides with a `TypeError` (a
 * byte decoder would read it as nothing, or as garbage: an `ArrayBuffer` has no `length`, a
 * string's characters are not bytes).
 */
export function codecStreams<I, O>(core: CodecCore<I, O>, bytes?: string): CodecStreams<I, O> {
  let output!: ReadableStreamDefaultController<O>;
  let input!: WritableStreamDefaultController;
  let pending: { error: unknown } | null = null; // an error waiting for the queue to empty
  let cancelled: { reason: unknown } | null = null;
  let failed = false;
  let backpressure = true; // as in a TransformStream: nothing is decoded before a read
  let relieve: (() => void) | null = null;

  const sink: CodecSink<O> = {
    enqueue(chunk) {
      // High-water mark 0: anything queued or handed out is enough. Set first: with more
      // reads waiting, enqueue calls pull() at once, which must be able to lift it again.
      backpressure = true;
      output.enqueue(chunk);
    },
  };
  const decode = (chunk: I) => {
    try {
      if (bytes !== undefined && !(chunk instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot decode ${bytes}: a chunk of type ${kindOf(chunk)} is not a Uint8Array`,
        );
      }
      core.push(chunk, sink);
    } catch (error) {
      fail(error);
      throw error;
    }
  };
  const tell = (reason: unknown) => {
    if (failed) return;
    failed = true;
    core.failed?.(reason);
  };
  const fail = (error: unknown) => {
    if (pending !== null) return;
    if ((output.desiredSize ?? 0) < 0) pending = { error };
    else output.error(error);
    tell(error); // last: the streams' states do not depend on it
  };

  const readable = new ReadableStream<O>({
    start(controller) {
      output = controller;
    },
    pull() {
      // Called when a read finds the queue empty.
      if (pending !== null) return output.error(pending.error);
      backpressure = false;
      relieve?.();
      relieve = null;
    },
    cancel(reason) {
      cancelled = { reason };
      input.error(reason);
      relieve?.();
      relieve = null;
      tell(reason);
    },
  }, { highWaterMark: 0 });

  const writable = new WritableStream<I>({
    start(controller) {
      input = controller;
    },
    write(chunk) {
      if (!backpressure) return decode(chunk);
      return new Promise<void>((resolve) => relieve = resolve).then(() => {
        if (cancelled !== null) throw cancelled.reason;
        // Aborted while it waited: the chunk is not decoded, as a TransformStream would not.
        if (input.signal.aborted) throw input.signal.reason;
        decode(chunk);
      });
    },
    close() {
      try {
        core.end();
      } catch (error) {
        fail(error);
        throw error;
      }
      output.close();
    },
    abort(reason) {
      fail(reason);
    },
  });
  return { readable, writable };
}

/** What a value is, for an error message: `null`, its `typeof`, or its class's name. */
export function kindOf(value: unknown): string {
  const kind = value === null ? "null" : typeof value;
  if (kind !== "object") return kind;
  try {
    return (value as object).constructor?.name || kind;
  } catch {
    return kind; // a getter that throws: "object" will do
  }
}
