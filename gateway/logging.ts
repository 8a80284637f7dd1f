/**
 * The gateway's log: JSON lines (pino) on stdout, one per event, with levels. Access lines, denials (when
 * ANVIL_DENIALS_STDOUT is set), start, shutdown and failures all go through one logger. Nothing secret is ever
 * passed to it; the redaction below is a second line of defence for fields that must never appear, and every line,
 * access lines included, passes the policy's one scrubbing pass (scrubLogLine) for caller-chosen text that may hold
 * one (a User-Agent or key carrying a presigned URL's signature, a capability).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import sonicBoom, { type SonicBoom } from 'sonic-boom';
import { scrubLogLine } from '../policy/index.ts';

export type { Logger } from 'pino';

/** Field paths blanked if anything ever logs them (headers, credentials, presigned query strings). */
const REDACT = [
  'authorization', '*.authorization', 'headers', '*.headers', 'query', '*.query', 'rawQuery', '*.rawQuery',
  'secretKey', '*.secretKey', 'secretAccessKey', '*.secretAccessKey', 'sessionToken', '*.sessionToken', 'signature', '*.signature',
];

/** The last line's time field and the millisecond it is for. */
let timeMs = -1;
let timeField = '';
/** The second the last formatted time fell in (its first millisecond), and its ISO text up to the seconds' dot. */
let secondMs = -1;
let secondText = '';

/**
 * pino's isoTime (`,"time":"2026-11-30T12:58:04.123Z"`): lines written within the same millisecond (access lines
 * under load) share the string, and a Date is formatted (toISOString, over a microsecond) once per second, the
 * milliseconds appended to that second's text.
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== timeMs) {
    timeMs = now;
    timeField = `,"time":"${isoInstant(now)}"`;
  }
  return timeField;
}

/**
 * `new Date(now).toISOString()` for an instant in milliseconds since the epoch, from 1970 to 9999 (log times), with
 * the date and clock formatted once per second.
 */
export function isoInstant(now: number): string {
  const ms = now % 1000;
  if (now - ms !== secondMs) {
    secondMs = now - ms;
    // `2026-11-30T12:58:04.` (every ISO time from year 0 to 9999 has its milliseconds in the last four characters).
    secondText = new Date(secondMs).toISOString().slice(0, -4);
  }
  return `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** A logger at `level` writing JSON lines to `destination` (stdout by default). */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'anvil' },
      timestamp: isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      // On the finished line, so the message, serialized errors and every child's lines are covered; a line with
      // nothing secret-shaped in it costs one scan (policy/scrub.ts).
      hooks: { streamWrite: scrubLogLine },
      formatters: { level: (label) => ({ level: label }) },
    },
    // Asynchronous: a request never waits for its access line's write(2); lines written meanwhile are batched into
    // the next write, and what is pending is flushed synchronously when the process exits.
    options.destination ?? stdoutDestination(),
  );
}

let stdout: SonicBoom | undefined;

/**
 * Standard output as one asynchronous sonic-boom stream per process, shared by every logger. Not pino.destination():
 * the sonic-boom 4 it builds retries a failed write forever when it flushes at exit, a closed reader (EPIPE)
 * included, so a gateway whose log reader had gone (a log shipper that died, a parent that exited) hung at exit on
 * SIGTERM with its main thread asleep in that loop, where not even a second signal is handled. With sonic-boom 5 the
 * exit flush gives up on such an error, and on a reader that stopped reading (EAGAIN): the lines are lost, the exit
 * is not. As pino does, a reader gone while serving (EPIPE) ends logging instead of crashing the process.
 */
function stdoutDestination(): SonicBoom {
  if (stdout !== undefined) return stdout;
  let exiting = false;
  // CommonJS whose module.exports is the class (the types also call it the default export's SonicBoom).
  const Stream = sonicBoom as unknown as typeof SonicBoom;
  const dest = new Stream({ fd: 1, sync: false, retryEAGAIN: () => !exiting });
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') {
      dest.removeListener('error', onError);
      dest.emit('error', err);
      return;
    }
    dest.write = () => true;
    dest.flushSync = () => {};
  };
  dest.on('error', onError);
  process.once('exit', () => {
    exiting = true;
    try {
      dest.flushSync();
    } catch {
      // The reader is gone or stuck: what was pending is lost.
    }
  });
  stdout = dest;
  return dest;
}

/**
 * The logger access lines go through: `logger`'s destination, level and format without its redaction pass, which
 * costs a 4 KiB GET more than the rest of its line (pino's redaction walks and copies the object for every path).
 * An access line is built from a fixed list of fields, none of them secret or user-supplied beyond bucket and key
 * (middleware/observe.ts), so no path in REDACT can ever match it; the line still passes the scrubbing hook the
 * child inherits (a key may carry query-like text). Never log anything else through it.
 */
export function accessLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [] } });
}

/** A logger that keeps its lines in memory (tests) or drops them. */
export function memoryLogger(lines: string[] = [], level = 'info'): Logger {
  return createLogger({ level, destination: { write: (line: string) => void lines.push(line.trimEnd()) } });
}

/** The one-argument log function older parts of the gateway take: an error line with the message. */
export function errorLine(logger: Logger): (line: string) => void {
  return (line) => logger.error(line);
}
