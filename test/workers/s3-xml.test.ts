/** test/s3-xml.test.ts against gateways run as `npm start` runs them: two worker processes behind one port. */
process.env.ANVIL_TEST_WORKERS ??= '2';
await import('../s3-xml.test.ts');
