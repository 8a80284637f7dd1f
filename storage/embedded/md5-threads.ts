/**
 * The MD5 of blob bodies (their ETag) computed on worker threads. MD5 cannot be parallelised within one body and
 * costs about as much CPU as everything else a large PUT does together (a --cpu-prof of 64 MiB PUTs: half the main
 * thread's busy time was node crypto); on the main thread it serialises with reading the socket, so one upload used
 * one core. A hash thread takes copies of the body's batches in order and the main thread goes on reading and
 * writing the disk; the digest is awaited once the body ended. Node has no asynchronous incremental hash
 * (crypto.subtle.digest is one-shot and has no MD5), hence this small pool.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Bodies reach the threads through shared 1 MiB slots, SLOTS of them per process, reused: the bytes copied for
 * hashing and not yet hashed are at most SLOTS MiB whatever the number of uploads (transferring a fresh buffer per
 * batch instead left each one to the thread's garbage collector, and 32 concurrent 64 MiB PUTs peaked at 360 MiB).
 * A session holds at most SESSION_SLOTS of them, so one fast client cannot take them all (others wait in turn). MD5
 * is the slowest step of a large PUT (about 2 ms per MiB here), so its thread should never wait for bytes: with two
 * slots it sat idle for 20 ms and more of a 64 MiB PUT whenever the main thread was held up (a disk write, the other
 * core busy); four give it some 8 ms of body in hand.
 */
const SLOT = 1024 * 1024;
const SLOTS = 8;
const SESSION_SLOTS = 4;

/** Hash threads per process: the gateway's cores, at most 4 (each worker process of the gateway has its own pool). */
const THREADS = Math.max(1, Math.min(4, availableParallelism()));

// Plain JavaScript evaluated in the thread, so it runs the same from the TypeScript sources (tsx) and from dist/.
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('md5')));
    h.update(new Uint8Array(m.slot, 0, m.n));
    parentPort.postMessage({ id: m.id, op: 'hashed' });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('md5');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, op: 'digest', digest: h.digest('hex') });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

const freeSlots: SharedArrayBuffer[] = [];
let slotsMade = 0;
const slotWaiters: Array<(slot: SharedArrayBuffer) => void> = [];

function takeSlot(): SharedArrayBuffer | Promise<SharedArrayBuffer> {
  const slot = freeSlots.pop();
  if (slot) return slot;
  if (slotsMade < SLOTS) {
    slotsMade++;
    return new SharedArrayBuffer(SLOT);
  }
  return new Promise((resolve) => slotWaiters.push(resolve));
}

function giveSlot(slot: SharedArrayBuffer): void {
  const waiter = slotWaiters.shift();
  if (waiter) waiter(slot);
  else freeSlots.push(slot);
}

interface Reply {
  id: number;
  op: 'hashed' | 'digest';
  digest?: string;
}

/** One hash thread and the sessions it serves. */
class HashThread {
  readonly sessions = new Map<number, Md5Session>();
  private readonly worker: Worker;

  constructor(private readonly onExit: (thread: HashThread) => void) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => this.sessions.get(r.id)?.reply(r));
    const fail = (err: Error) => {
      this.onExit(this);
      for (const s of this.sessions.values()) s.fail(err);
      this.sessions.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the MD5 thread exited (code ${code})`)));
  }

  post(message: { id: number; op: 'update' | 'digest' | 'drop'; slot?: SharedArrayBuffer; n?: number }): void {
    this.worker.postMessage(message);
  }

  /** Keeps the process alive while a session waits on this thread, and only then. */
  attach(session: Md5Session): void {
    if (this.sessions.size === 0) this.worker.ref();
    this.sessions.set(session.id, session);
  }

  detach(session: Md5Session): void {
    if (this.sessions.delete(session.id) && this.sessions.size === 0) this.worker.unref();
  }
}

const threads: HashThread[] = [];
let nextId = 0;

function leastBusyThread(): HashThread {
  // An idle thread first: a new one takes tens of milliseconds to start, which the body waiting on it would pay.
  const idle = threads.find((t) => t.sessions.size === 0);
  if (idle) return idle;
  if (threads.length < THREADS) {
    const thread = new HashThread((t) => {
      const i = threads.indexOf(t);
      if (i >= 0) threads.splice(i, 1);
    });
    threads.push(thread);
    return thread;
  }
  return threads.reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
}

/**
 * The MD5 of one body, fed in order to a hash thread. update() copies the bytes into shared slots (the caller keeps
 * its buffers for the disk write) and resolves once they are handed over, waiting for a free slot when the threads
 * are behind; digest() resolves to the 16-byte MD5 of everything updated. Call digest() or drop() exactly once.
 * Rejects if the thread dies (the next session gets a new one).
 */
export class Md5Session {
  readonly id = ++nextId;
  private readonly thread = leastBusyThread();
  /** Slots handed to the thread, oldest first: each 'hashed' reply returns the oldest. */
  private readonly inThread: SharedArrayBuffer[] = [];
  private dropped = false;
  private failed: Error | undefined;
  private waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private result: { resolve: (d: Buffer) => void; reject: (err: Error) => void } | undefined;

  constructor() {
    this.thread.attach(this);
  }

  /** Hands a copy of `buffers` (in order, `length` bytes in all) to the thread. */
  async update(buffers: readonly Uint8Array[], length: number): Promise<void> {
    let slot: SharedArrayBuffer | undefined;
    let view: Uint8Array | undefined;
    let filled = 0;
    let left = length;
    for (const b of buffers) {
      for (let from = 0; from < b.length; ) {
        if (!view) {
          while (this.inThread.length >= SESSION_SLOTS) await this.hashedOne();
          if (this.failed) throw this.failed;
          slot = await takeSlot();
          view = new Uint8Array(slot, 0, Math.min(SLOT, left));
          filled = 0;
        }
        const n = Math.min(b.length - from, view.length - filled);
        view.set(b.subarray(from, from + n), filled);
        from += n;
        filled += n;
        left -= n;
        if (filled === view.length) {
          this.inThread.push(slot!);
          this.thread.post({ id: this.id, op: 'update', slot, n: filled });
          view = undefined;
        }
      }
    }
  }

  private hashedOne(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The MD5 of all bytes updated, once the thread has hashed them. */
  digest(): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<Buffer>((resolve, reject) => {
      this.result = { resolve, reject };
      this.thread.post({ id: this.id, op: 'digest' });
    });
  }

  /** Forgets the session (a body that failed): the thread drops its state, the slots come back as it gets to them. */
  drop(): void {
    this.dropped = true;
    if (this.failed) return;
    this.thread.post({ id: this.id, op: 'drop' });
    if (this.inThread.length === 0) this.thread.detach(this);
  }

  /** A message from the thread. */
  reply(r: Reply): void {
    if (r.op === 'hashed') {
      giveSlot(this.inThread.shift()!);
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.resolve();
      if (this.dropped && this.inThread.length === 0) this.thread.detach(this);
    } else {
      this.thread.detach(this);
      this.result?.resolve(Buffer.from(r.digest!, 'hex'));
    }
  }

  /** The thread died: every wait rejects, and the slots it held are free again. */
  fail(err: Error): void {
    this.failed = err;
    for (const slot of this.inThread.splice(0)) giveSlot(slot);
    this.waiter?.reject(err);
    this.result?.reject(err);
    this.waiter = undefined;
    this.result = undefined;
  }
}
