/** gateway/admin/: the JSON admin API under /_anvil/admin/v1 — tenants, credentials, bucket owners, denial and audit logs. */
export { ADMIN_PREFIX, ADMIN_ROUTES, FAMILY_ROUTES, adminTargetOf, dispatchAdmin, matchAdminRoute, type AdminContext, type AdminRequest, type AdminResponse, type AdminRoute } from './routes.ts';
export { adminApi, adminErrors, MAX_ADMIN_BODY } from './middleware.ts';
export { AdminError, adminErrorBody, toAdminError } from './errors.ts';
export { NEEDS_ADMIN, type AdminTarget } from './call.ts';
