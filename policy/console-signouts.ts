/**
 * Console sign-outs: console session tokens are stateless (console-sessions.ts), so signing out records the session's
 * id in the policy database until the session would have expired anyway, and every node refuses the token from then
 * on (OWASP Session Management: a logout ends the session on the server, not only in the browser). Recording one is a
 * policy change: the revision moves, so every node's caches (this one's reads, the credential cache) drop at once on
 * this node and within the consistency bound on the others, as a revocation does. Expired rows are purged by the next
 * sign-out, so the table holds at most the sessions signed out in the last MAX_SESSION_MS.
 */
import type { PolicyDatabase } from './database/policy-database.ts';
import { RevisionCache } from './database/revision-cache.ts';
import { commitPolicy } from './store-base.ts';

/** The signed-out console sessions of one policy database. */
export class ConsoleSignOuts {
  private readonly signedOut: RevisionCache<boolean>;

  constructor(private readonly database: PolicyDatabase) {
    this.signedOut = new RevisionCache(database.signals.policy);
  }

  /**
   * Records a session as signed out (audited as `console.sign-out` by its access key; the id is no secret, but is not
   * logged either) and purges the rows of sessions expired by `now` (epoch ms).
   */
  async signOut(session: { id: string; accessKeyId: string; expiresAt: number }, tenant: string | undefined, now = Date.now()): Promise<void> {
    await commitPolicy(this.database, async (trx) => {
      await trx.deleteFrom('console_signouts').where('expires_at', '<=', now).execute();
      await trx.insertInto('console_signouts').values({ id: session.id, expires_at: session.expiresAt }).onConflict((oc) => oc.column('id').doNothing()).execute();
      return { result: undefined, change: { actor: session.accessKeyId, action: 'console.sign-out', accessKeyId: session.accessKeyId, ...(tenant ? { tenant } : {}) } };
    });
  }

  /** Whether the session with this id was signed out (cached until the policy revision moves). */
  has(id: string): Promise<boolean> {
    const db = this.database.db('policy');
    return this.signedOut.get(id, async () => (await db.selectFrom('console_signouts').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
  }
}
