/**
 * Compares two strings in UTF-8 byte order: the order S3 lists keys in and the order the embedded index keeps
 * (SQLite's BINARY on UTF-8 bytes), which is code point order. JavaScript's `<` compares UTF-16 code units, which puts
 * U+10000 and above before U+E000..U+FFFF. Compared unit by unit without encoding either string, since listings
 * call it per key. (policy/relationships/page-filter.ts keeps its own copy: policy does not import storage.)
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Surrogates (0xD800..0xDFFF) rank above every other code unit, as the code points they encode do. */
function codePointRank(unit: number): number {
  return unit >= 0xd800 ? (unit <= 0xdfff ? unit + 0x2000 : unit - 0x800) : unit;
}
