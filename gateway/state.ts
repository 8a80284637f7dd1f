/** Typed per-request state carried through the middleware, in the order the middleware fills it. */
import type { ConsoleSession } from '../policy/console-sessions.ts';
import type { Principal } from '../policy/types.ts';
import type { AdminTarget, Target } from './addressing.ts';
import type { VerifiedAuth } from './auth/sigv4.ts';
import type { PostForm } from './post-policy.ts';
import type { Access, OpResult } from './operation.ts';
import type { Route } from './routes.ts';

/** Koa's ctx.state for the gateway. */
export interface GatewayState {
  requestId: string;
  startedAt: number;
  /** The API a request went to when it is no S3 operation (`STS`, `Admin`, `Console`, …), for logs and metrics. */
  api?: 'STS' | 'Admin' | 'Console' | 'Health' | 'Metrics';
  target?: Target;
  /** Set instead of route when the request addresses the admin API. */
  admin?: AdminTarget;
  route?: Route;
  auth?: VerifiedAuth;
  principal?: Principal;
  /** A browser form upload whose POST policy verified (set instead of auth; see middleware/post-object.ts). */
  postForm?: PostForm;
  /** The web console session the principal signed in with. */
  consoleSession?: ConsoleSession;
  access?: Access;
  result?: OpResult;
}
