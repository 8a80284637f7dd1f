/** gateway/console/: the web console at /_anvil/console/ — sign-in, session cookie, CSRF, its page, and the admin API behind it. */
export { CONSOLE_SECURITY_HEADERS, consoleDir, loadConsoleAssets, type ConsoleFile } from './assets.ts';
export { consoleApi, consoleAssets, consoleAuth, consoleErrors, consoleOff, type ConsoleDeps } from './middleware.ts';
export { CONSOLE_PREFIX, CSRF_HEADER, SESSION_COOKIE } from './session.ts';
