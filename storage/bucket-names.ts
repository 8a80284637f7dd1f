/**
 * The shape of every bucket name S3 has ever allowed (current rules: 3 to 63 lower-case letters, digits, `.` and `-`,
 * starting with a letter or digit; legacy us-east-1 names added upper case and `_`, up to 255 characters). Source:
 * Amazon S3 User Guide, "General purpose bucket naming rules". A name outside it names no bucket anywhere: never `.`
 * or `..`, which a backend on a file system (MinIO) resolves as a path segment, nor a `/`, a space or a NUL.
 */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/;

/** True when `name` has the shape of some bucket name S3 has allowed (see BUCKET_NAME). */
export function plausibleBucketName(name: string): boolean {
  return BUCKET_NAME.test(name);
}
