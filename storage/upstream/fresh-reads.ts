/**
 * Reads whose answer must be newer than the moment they were asked for, shared between concurrent callers: the
 * incarnation check after every write (Buckets.confirm()) asked the upstream once per write, so a 4 KiB PUT cost two
 * upstream requests. A caller is handed a read that has not been sent yet, so it is sent after the caller asked and
 * answers as fresh as a read of its own; callers asking while one is in flight for the same key wait for it to end
 * and share the next one. Under concurrent writes to one bucket that is one read for many writes, and at most one
 * read in flight per key; a lone write waits for no one and sends its read at once.
 */

/** A read not sent yet, and the callers' promise of its answer. */
interface Pending<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/** One key's state: whether a read is in flight, and the read the next callers share. */
interface Slot<T> {
  inFlight: boolean;
  next: Pending<T> | undefined;
}

/** Shares fresh reads by key; see the module comment. `read` is called at most once at a time per key. */
export class FreshReads<T> {
  private readonly slots = new Map<string, Slot<T>>();

  constructor(private readonly read: (key: string) => Promise<T>) {}

  /**
   * Resolves with the result of a read of `key` sent after this call (rejects with what that read throws). Holds an
   * entry per key only while a read of it is in flight or waiting.
   */
  get(key: string): Promise<T> {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { inFlight: false, next: undefined };
      this.slots.set(key, slot);
    }
    if (slot.next) return slot.next.promise;
    if (!slot.inFlight) return this.send(key, slot);
    let resolve!: (value: T) => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    slot.next = { promise, resolve, reject };
    return promise;
  }

  private send(key: string, slot: Slot<T>): Promise<T> {
    slot.inFlight = true;
    let sent: Promise<T>;
    try {
      sent = this.read(key);
    } catch (err) {
      sent = Promise.reject(err);
    }
    const settled = (): void => {
      slot.inFlight = false;
      const waiting = slot.next;
      if (waiting === undefined) {
        this.slots.delete(key);
        return;
      }
      slot.next = undefined;
      this.send(key, slot).then(waiting.resolve, waiting.reject);
    };
    sent.then(settled, settled);
    return sent;
  }
}
