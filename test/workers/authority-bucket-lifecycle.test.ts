/** test/authority-bucket-lifecycle.test.ts against a gateway with two worker processes (ANVIL_WORKERS=2) behind one port. */
process.env.ANVIL_TEST_WORKERS ??= '2';
await import('../authority-bucket-lifecycle.test.ts');
