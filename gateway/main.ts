/** `npm start`: the gateway on the configured address, printing the root credential once when it is created. */
import { loadConfig } from './config.ts';
import { startGateway } from './server.ts';

const config = loadConfig();
const gw = await startGateway(config);
process.stdout.write(`Anvil gateway listening on ${gw.url} (data in ${config.dataDir}, ${gw.backend.kind} store)\n`);
if (gw.root.secretKey && gw.root.created) {
  process.stdout.write(
    `\nRoot credential created. The secret is shown only this once:\n` +
      `  AWS_ACCESS_KEY_ID=${gw.root.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${gw.root.secretKey}\n\n` +
      `Try it:\n  AWS_ACCESS_KEY_ID=${gw.root.accessKeyId} AWS_SECRET_ACCESS_KEY=${gw.root.secretKey} ` +
      `aws --endpoint-url ${gw.url} --region ${config.region} s3 ls\n\n`,
  );
} else {
  process.stdout.write(`Root access key: ${gw.root.accessKeyId}\n`);
}
const stop = () => {
  gw.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
