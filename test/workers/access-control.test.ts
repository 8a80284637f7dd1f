/** test/access-control.test.ts against a gateway with two worker processes (ANVIL_WORKERS=2) behind one port. */
process.env.ANVIL_TEST_WORKERS ??= '2';
await import('../access-control.test.ts');
