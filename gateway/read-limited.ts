/** The one size-limited body reader: admin JSON, STS forms and S3's XML documents are read whole through it. */

/**
 * Reads a stream whole, throwing what `tooLarge` makes as soon as more than `limit` bytes have arrived (the rest is
 * never buffered). Errors of the stream itself propagate.
 */
export async function readLimited(stream: AsyncIterable<unknown>, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += bytes.length;
    if (size > limit) throw tooLarge();
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}
