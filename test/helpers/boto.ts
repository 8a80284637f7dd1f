/**
 * botocore (the library of the AWS CLI v1, installed by test/tools/install-backup-tools.sh) as a test client:
 * one operation per call, with SigV4 (`s3v4`) or SigV2 (`s3`), path-style, no retries.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const SCRIPT = `
import json, sys, botocore.session, botocore.config
from botocore.exceptions import ClientError
endpoint, ak, sk, version, op, params = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], json.loads(sys.argv[6])
c = botocore.session.get_session().create_client('s3', endpoint_url=endpoint, region_name='us-east-1',
    aws_access_key_id=ak, aws_secret_access_key=sk,
    config=botocore.config.Config(signature_version=version, s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
try:
    if op == 'presign':
        expires = params.pop('ExpiresIn', 300)
        print(json.dumps({'url': c.generate_presigned_url('get_object', Params=params, ExpiresIn=expires)}))
    else:
        out = getattr(c, op)(**params)
        if 'Body' in out: out['Body'] = out['Body'].read().decode()
        print(json.dumps(out, default=str))
except ClientError as e:
    print(json.dumps({'error': e.response['Error']['Code'], 'status': e.response['ResponseMetadata']['HTTPStatusCode']}))
`;

/** Runs one botocore S3 operation (snake_case name, boto3 parameters); its JSON answer or `{error, status}`. */
export async function boto(
  endpoint: string,
  creds: { accessKeyId: string; secretAccessKey: string },
  op: string,
  params: Record<string, unknown>,
  signatureVersion: 's3v4' | 's3' = 's3v4',
): Promise<any> {
  const { stdout } = await run('python3', ['-c', SCRIPT, endpoint, creds.accessKeyId, creds.secretAccessKey, signatureVersion, op, JSON.stringify(params)]);
  return JSON.parse(stdout);
}
