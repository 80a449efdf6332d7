// URLs as logs and STATUS= show them. Two secrets, two ways: a probe URL's password sits in its userinfo, so
// the rest of it is shown; a heartbeat URL's path is its token, so only its origin is.

/** A probe URL for logs and STATUS: all of it but the user and password, which must not reach the journal. */
export function withoutCredentials(url: URL | string): string {
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  return shown.href;
}

/** A URL whose path or query is the secret (a heartbeat URL): "https://hc-ping.com/…". */
export function originOnly(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(a URL, not shown)';
  }
}
