/**
 * A raw TCP connection to a gateway, for what HTTP clients will not do on purpose: pipeline requests, send part of a
 * body and go silent, stop reading a response. Requests are SigV4-signed by signRequest (test/helpers/raw.ts).
 */
import { connect, type Socket } from 'node:net';
import { signRequest, type SignOptions } from './raw.ts';

/** One response read off the wire. */
export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A connection that buffers what it receives and parses responses on demand. */
export class RawConnection {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private waiters: Array<() => void> = [];
  /** When the server closed or reset the connection. */
  closedAt: number | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.closedAt ??= Date.now();
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  /** Opens a connection to the gateway at `url`. */
  static async open(url: string): Promise<RawConnection> {
    const u = new URL(url);
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  /** Whether the server has closed (or reset) the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Writes raw bytes. */
  write(data: Buffer | string): void {
    this.socket.write(data);
  }

  /** Reads the next whole response (Content-Length framed; `head` for a HEAD request); throws on close or timeout. */
  async response(opts: { timeoutMs?: number; head?: boolean } = {}): Promise<WireResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      const parsed = this.parse(opts.head ?? false);
      if (parsed) return parsed;
      if (this.ended) throw new Error(`connection closed before a whole response (${this.buffered.length} bytes buffered)`);
      if (Date.now() > deadline) throw new Error('no whole response in time');
      await this.wait(deadline - Date.now());
    }
  }

  /** Waits until the server closes the connection; returns false on timeout. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.ended;
  }

  /** Closes this end. */
  destroy(): void {
    this.socket.destroy();
  }

  private parse(head: boolean): WireResponse | undefined {
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buffered.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const length = head || status === 304 || status === 204 ? 0 : Number(headers['content-length'] ?? 0);
    if (this.buffered.length < end + 4 + length) return undefined;
    const body = this.buffered.subarray(end + 4, end + 4 + length);
    this.buffered = this.buffered.subarray(end + 4 + length);
    return { status, headers, body };
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(ms, 1));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * The bytes of one signed HTTP/1.1 request (headers, and the body when given). `declaredLength` overrides
 * Content-Length, for a body the caller sends only part of; such bodies are signed UNSIGNED-PAYLOAD.
 */
export async function signedRequestBytes(opts: SignOptions & { declaredLength?: number }): Promise<{ head: string; body: Buffer }> {
  const body = Buffer.from(opts.body ?? '');
  const length = opts.declaredLength ?? body.length;
  const signed = await signRequest({
    ...opts,
    body: opts.declaredLength !== undefined ? '' : body,
    payloadHash: opts.declaredLength !== undefined ? 'UNSIGNED-PAYLOAD' : opts.payloadHash,
    headers: { ...opts.headers, 'content-length': String(length) },
  });
  const lines = [`${opts.method} ${signed.path} HTTP/1.1`, ...Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`)];
  return { head: lines.join('\r\n') + '\r\n\r\n', body };
}
