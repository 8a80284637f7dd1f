/**
 * Streaming a client's body to the upstream: the declared length is enforced without letting the upstream see a
 * complete body early, and a body stream that errors aborts the upstream request and surfaces as that same error.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { IncompleteBodyError, StorageFullError } from '../errors.ts';
import { drainRefusedBody } from '../space-reserve.ts';
import { translate } from './errors.ts';

/**
 * Passes exactly `size` bytes through, holding the latest chunk back until the source has ended: the upstream gets
 * its last byte only once the body is known to be exactly `size` long, so a longer body can never be stored.
 */
class LengthGuard extends Transform {
  private seen = 0;
  private held: Buffer | undefined;

  constructor(private readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size) return done(new IncompleteBodyError(`body is longer than the declared ${this.size} bytes`));
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.seen !== this.size) return done(new IncompleteBodyError(`body ended after ${this.seen} of ${this.size} bytes`));
    if (this.held) this.push(this.held);
    done();
  }
}

/** Options of sendBody(). */
export interface SendBodyOptions<T> {
  body: Readable;
  size: number;
  /** Sends the upstream request with the guarded stream as its body; must pass the signal to the SDK. */
  send: (body: Readable, signal: AbortSignal) => Promise<T>;
}

/**
 * Sends a request whose body is the client's stream. When the client's stream (or the length guard) fails, the
 * upstream request is aborted and the stream's own error is thrown, so the gateway's verifier errors arrive as
 * themselves; upstream failures arrive translated.
 */
export async function sendBody<T>({ body, size, send }: SendBodyOptions<T>): Promise<T> {
  const controller = new AbortController();
  const guard = new LengthGuard(size);
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    controller.abort();
  };
  const onSourceError = (err: Error): void => {
    fail(err);
    guard.destroy(err);
  };
  // Stays attached: a client stream failing after the upstream already gave up must not become an uncaught error.
  body.on('error', onSourceError);
  guard.on('error', fail);
  body.pipe(guard);
  try {
    const out = await send(guard, controller.signal);
    if (failure) throw failure;
    return out;
  } catch (err) {
    if (failure) throw failure;
    const translated = translate(err);
    if (translated instanceof StorageFullError) {
      body.unpipe(guard);
      await drainRefusedBody(body, size);
    }
    throw translated;
  } finally {
    body.unpipe(guard);
    if (!guard.destroyed) guard.destroy();
  }
}
