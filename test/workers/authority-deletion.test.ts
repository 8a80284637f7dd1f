/** test/authority-deletion.test.ts against gateways run as `npm start` runs them: two worker processes behind one port. */
process.env.ANVIL_TEST_WORKERS ??= '2';
await import('../authority-deletion.test.ts');
