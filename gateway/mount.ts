/**
 * Sub-applications: each pipeline (S3, admin API, STS) is its own Koa app, and the front app hands a request to one
 * of them as a single step.
 */
import Koa, { type Middleware, type ParameterizedContext } from 'koa';
import compose from 'koa-compose';

/** A Koa app made of these steps, in order. */
export function pipeline<S>(...steps: Middleware<S>[]): Koa<S> {
  const app = new Koa<S>();
  for (const step of steps) app.use(step);
  return app;
}

/** One step that runs the sub-application `choose` names for the request (its errors propagate to the caller). */
export function dispatch<S, K extends string>(
  choose: (ctx: ParameterizedContext<S>) => K,
  apps: Record<K, Koa<S>>,
): Middleware<S> {
  const runs = Object.fromEntries(Object.entries(apps).map(([name, app]) => [name, compose((app as Koa<S>).middleware)])) as Record<K, compose.ComposedMiddleware<ParameterizedContext<S>>>;
  return function dispatchMiddleware(ctx, next) {
    return runs[choose(ctx)](ctx, next);
  };
}
