/**
 * Streaming a client's body to the upstream: the declared length is enforced without letting the upstream see a
 * complete body early, and a body stream that errors aborts the upstream request and surfaces as that same error.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { IncompleteBodyError, ServiceUnavailableError, StorageFullError } from '../errors.ts';
import { drainRefusedBody } from '../space-reserve.ts';
import { translate } from './errors.ts';

/**
 * Passes exactly `size` bytes through, holding the latest chunk back until the source has ended: the upstream gets
 * its last byte only once the body is known to be exactly `size` long, so a longer body can never be stored.
 *
 * It never emits 'error': the SDK wraps the stream it is given in streams of its own (aws-chunked encoding, checksum
 * hashing) that re-emit a source error where nobody listens, which would crash the process. A body that turns out
 * wrong is reported to `onFail` instead (which aborts the upstream request), and the guard just stops: it neither
 * errors nor ends, so the upstream can never see a complete body.
 */
class LengthGuard extends Transform {
  private seen = 0;
  private held: Buffer | undefined;
  private failed = false;

  constructor(
    private readonly size: number,
    private readonly onFail: (err: Error) => void,
    private readonly beforeEnd?: () => Promise<void>,
  ) {
    super();
  }

  /** Stops the guard for good; what it holds is dropped. */
  stop(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.held = undefined;
    this.onFail(err);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.failed) return done();
    this.seen += chunk.length;
    if (this.seen > this.size) {
      this.stop(new IncompleteBodyError(`body is longer than the declared ${this.size} bytes`));
      return done();
    }
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.failed) return; // never ends: see the class comment
    if (this.seen !== this.size) return this.stop(new IncompleteBodyError(`body ended after ${this.seen} of ${this.size} bytes`));
    const end = (): void => {
      if (this.failed) return;
      if (this.held) this.push(this.held);
      done();
    };
    if (this.beforeEnd === undefined) return end();
    this.beforeEnd().then(end, (err: Error) => this.stop(err));
  }
}

/**
 * Decides whose fault an upstream failure is while the client's body is still incomplete: the body's own error when
 * it fails (the gateway's idle timer ends a stalled body with RequestTimeout), undefined as soon as the client shows
 * it is alive (a byte arrives, or the body ends or closes). An upstream that times out an idle upload (its own idle
 * timeout, or the socket timeout from ANVIL_UPSTREAM_TIMEOUT_MS, either shorter than the gateway's) only echoes a
 * client that stopped sending; answering 503 there would invite the client to retry what is its own fault. The body
 * flows meanwhile, so a paused stream does not read as the gateway being the slow side.
 */
function clientVerdict(body: Readable, guard: LengthGuard): Promise<Error | undefined> {
  body.unpipe(guard);
  if (body.readableLength > 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const settle = (err?: Error): void => {
      body.off('data', alive).off('end', alive).off('close', alive).off('error', settle);
      body.pause();
      resolve(err);
    };
    const alive = (): void => settle();
    body.on('data', alive).on('end', alive).on('close', alive).on('error', settle);
    if (body.destroyed) return settle(body.errored ?? undefined);
    body.resume();
  });
}

/** Reads a body declared empty to its end; IncompleteBodyError if it holds a byte, its own error if it fails. */
async function emptied(body: Readable): Promise<void> {
  for await (const chunk of body) {
    if ((chunk as Buffer).length > 0) throw new IncompleteBodyError('body is longer than the declared 0 bytes');
  }
}

/** Options of sendBody(). */
export interface SendBodyOptions<T> {
  body: Readable;
  size: number;
  /** Sends the upstream request with the guarded stream as its body; must pass the signal to the SDK. */
  send: (body: Readable, signal: AbortSignal) => Promise<T>;
  /**
   * Awaited once the whole body has arrived, before the upstream gets its last bytes (before the request starts for
   * an empty body): a rejection aborts the upstream request, so the upstream never completes the write, and is thrown.
   */
  beforeEnd?: () => Promise<void>;
}

/**
 * Sends a request whose body is the client's stream. When the client's stream (or the length guard) fails, the
 * upstream request is aborted and the stream's own error is thrown, so the gateway's verifier errors arrive as
 * themselves; upstream failures arrive translated. No error of the client's stream ever reaches a stream the SDK
 * holds (see LengthGuard), so no client input can become an unhandled 'error' event.
 */
export async function sendBody<T>({ body, size, send, beforeEnd }: SendBodyOptions<T>): Promise<T> {
  // A body can fail before it is sent: a small one arrives whole while the write first checks its bucket, and its
  // verifier fails it at once. Piping an errored stream passes nothing on, so the upstream would wait for a body
  // until its timeout.
  if (body.errored) throw body.errored;
  if (body.destroyed) throw new IncompleteBodyError('the body ended before it could be sent');
  let source = body;
  if (size === 0) {
    // An empty body: the upstream completes the write as soon as it has the request's head, so the client's body
    // must have ended first (its framing, chunk signatures and trailer checked: aws-chunked sends "0\r\n..." even
    // for no bytes, and may send it late), and then the caller's check must have passed.
    await emptied(body);
    await beforeEnd?.();
    source = Readable.from([]);
  }
  const controller = new AbortController();
  let failure: Error | undefined;
  const guard = new LengthGuard(
    size,
    (err) => {
      failure ??= err;
      controller.abort();
    },
    size === 0 ? undefined : beforeEnd,
  );
  const onSourceError = (err: Error): void => {
    source.unpipe(guard);
    guard.stop(err);
  };
  // Stays attached: a client stream failing after the upstream already gave up must not become an uncaught error.
  source.on('error', onSourceError);
  source.pipe(guard);
  try {
    const out = await send(guard, controller.signal);
    if (failure) throw failure;
    return out;
  } catch (err) {
    if (failure) throw failure;
    const translated = translate(err);
    if (translated instanceof ServiceUnavailableError && !body.readableEnded) throw (await clientVerdict(body, guard)) ?? translated;
    if (translated instanceof StorageFullError) {
      body.unpipe(guard);
      await drainRefusedBody(body, size);
    }
    throw translated;
  } finally {
    source.unpipe(guard);
    // Without an error: a destroy(err) would reach the SDK's wrappers as an 'error' nobody listens to.
    if (!guard.destroyed) guard.destroy();
  }
}
