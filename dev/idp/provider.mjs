// Loopback-only OpenID Provider for tests and the demo, built on panva's OpenID-certified
// `oidc-provider` (pinned in package.json). NEVER expose it: it binds to 127.0.0.1, keeps
// everything in memory and signs with throw-away keys.
//
// Configured entirely by environment variables (see README.md next to this file):
//   OP_PORT                 port to listen on; 0 (default) picks a free one
//   OP_ISSUER_PATH          optional path prefix of the issuer, e.g. "/oidc"
//   RP_REDIRECT_URIS        comma-separated exact redirect URIs of the Airflow client (required)
//   RP_POST_LOGOUT_URIS     comma-separated post_logout_redirect_uris of the Airflow client
//   CLIENT_ID / CLIENT_SECRET            default airflow / airflow-secret
//   CLIENT_AUTH_METHOD      registered token_endpoint_auth_method, default client_secret_basic
//   IDP_STRICT_CLIENT_AUTH  1 = only the registered method is accepted (default: basic and post both work)
//   IDP_USERS_JSON          JSON object id -> claims; added to (or replacing) the built-in users
//   IDP_PASSWORD            the password every user signs in with, default "test"
//   IDP_GROUPS_WITHOUT_SCOPE 1 = release `groups` with `openid` too (Entra-like); default needs scope `groups`
//   IDP_SERVICE_CLIENTS_JSON JSON object client_id -> {secret, roles, claims?} for extra client-credentials clients
//   IDP_TTL_JSON            JSON object of oidc-provider ttl overrides in seconds, e.g. {"IdToken": 5}
//   API_AUDIENCE            audience of client-credentials JWT access tokens, default api://airflow
//   IDP_TEST_ENDPOINTS      1 = enable the /_test/* admin endpoints (key rotation, user edits)
//   IDP_EXIT_ON_STDIN_EOF   1 = exit when stdin closes (set by the Python harness: no orphans)
//   IDP_STATE_FILE          keep keys, sessions, codes and tokens across a restart: read at start, written at stop
//
// On listening it prints exactly one line `OP_READY <issuer>` on stdout; everything else goes to stderr.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

// Keep stdout for the OP_READY line only: oidc-provider prints its notices with console.info.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

// Imported after the console redirect (static imports would be evaluated first).
const { default: Provider, errors } = await import('oidc-provider');

const env = process.env;
const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);
const flag = (name) => ['1', 'true', 'yes'].includes((env[name] || '').toLowerCase());

const PORT = Number(env.OP_PORT || 0);
let PREFIX = (env.OP_ISSUER_PATH || '').trim();
if (PREFIX && !PREFIX.startsWith('/')) PREFIX = `/${PREFIX}`;
PREFIX = PREFIX.replace(/\/+$/, '');
const REDIRECT_URIS = list(env.RP_REDIRECT_URIS);
const POST_LOGOUT_URIS = list(env.RP_POST_LOGOUT_URIS);
const CLIENT_ID = env.CLIENT_ID || 'airflow';
const CLIENT_SECRET = env.CLIENT_SECRET || 'airflow-secret';
const CLIENT_AUTH_METHOD = env.CLIENT_AUTH_METHOD || 'client_secret_basic';
const STRICT_CLIENT_AUTH = flag('IDP_STRICT_CLIENT_AUTH');
const PASSWORD = env.IDP_PASSWORD || 'test';
const GROUPS_WITHOUT_SCOPE = flag('IDP_GROUPS_WITHOUT_SCOPE');
const TEST_ENDPOINTS = flag('IDP_TEST_ENDPOINTS');
const API_AUDIENCE = env.API_AUDIENCE || 'api://airflow';

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}

if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`bad OP_PORT ${env.OP_PORT}`);
if (!REDIRECT_URIS.length) fail('RP_REDIRECT_URIS is required (comma-separated redirect URIs)');
if (!['client_secret_basic', 'client_secret_post'].includes(CLIENT_AUTH_METHOD)) {
  fail('CLIENT_AUTH_METHOD must be client_secret_basic or client_secret_post');
}

function parseJsonObject(name) {
  if (!env[name]) return {};
  let value;
  try {
    value = JSON.parse(env[name]);
  } catch (err) {
    fail(`${name} is not valid JSON: ${err.message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(`${name} must be a JSON object`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Users
const user = (id, name, groups) => ({
  name,
  preferred_username: id,
  email: `${id}@example.test`,
  email_verified: true,
  groups,
});
const USERS = {
  alice: user('alice', 'Alice Admin', ['airflow-admins', 'data-eng']),
  bob: user('bob', 'Bob Viewer', ['airflow-viewers']),
  carol: user('carol', 'Carol Marketing', ['marketing']),
  dave: user('dave', 'Dave Ops', ['airflow-ops']),
  erin: user('erin', 'Erin User', ['airflow-users']),
  ...parseJsonObject('IDP_USERS_JSON'),
};

// Which scope releases which claim. Claims that are not standard (e.g. JumpCloud's `memberOf`,
// `roles`, `username`) are released with `openid`, i.e. always, like a JumpCloud attribute mapping.
const SCOPE_CLAIMS = {
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'nickname', 'picture', 'locale', 'zoneinfo',
    'updated_at', 'website', 'gender', 'birthdate', 'middle_name', 'profile'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};
const standardClaims = new Set(['sub', ...Object.values(SCOPE_CLAIMS).flat()]);
function customClaimNames() {
  const names = new Set();
  for (const claims of Object.values(USERS)) {
    for (const key of Object.keys(claims || {})) if (!standardClaims.has(key)) names.add(key);
  }
  return [...names];
}
function claimsConfig() {
  const openid = ['sub', ...customClaimNames()];
  if (GROUPS_WITHOUT_SCOPE) openid.push('groups');
  return { openid, ...SCOPE_CLAIMS };
}

// ---------------------------------------------------------------------------------------------
// Clients
const SERVICE_CLIENTS = {
  'svc-etl': { secret: 'svc-secret', roles: ['Airflow.Op'] },
  ...parseJsonObject('IDP_SERVICE_CLIENTS_JSON'),
};
const CLIENTS = [
  {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'Airflow',
    redirect_uris: REDIRECT_URIS,
    post_logout_redirect_uris: POST_LOGOUT_URIS,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: CLIENT_AUTH_METHOD,
    id_token_signed_response_alg: 'RS256',
  },
  ...Object.entries(SERVICE_CLIENTS).map(([clientId, c]) => ({
    client_id: clientId,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
];
const REGISTERED_AUTH = new Map(CLIENTS.map((c) => [c.client_id, c.token_endpoint_auth_method]));

// Lifetimes in seconds; IDP_TTL_JSON overrides, e.g. {"IdToken": 5} for expiry tests.
const TTL = {
  AccessToken: 600,
  AuthorizationCode: 60,
  IdToken: 600,
  ClientCredentials: 600,
  Interaction: 600,
  Session: 3600,
  Grant: 3600,
  RefreshToken: 3600,
  ...parseJsonObject('IDP_TTL_JSON'),
};

// ---------------------------------------------------------------------------------------------
// Restart (IDP_STATE_FILE): a real IdP's restart loses nothing, so what this one holds in memory (signing and
// cookie keys, and the adapter's sessions, interactions, codes, grants and tokens) is written to the file at
// stop and read back at start. Without the variable everything stays in memory, as before.
const STATE_FILE = env.IDP_STATE_FILE || '';
const saved = STATE_FILE && fs.existsSync(STATE_FILE) ? JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) : null;

// The adapter's store, in the shape oidc-provider's MemoryAdapter expects (get, set with maxAge, delete), kept
// in a plain Map so that it can be saved. Grant member lists are Maps with Infinity expiries: tagged in JSON.
class SavedStore {
  constructor(entries = []) {
    this.entries = new Map(entries.map(([key, value, expiry]) => [key, { value: SavedStore.revive(value), expiry }]));
  }

  static revive(value) {
    return value && value.$map ? new Map(value.$map.map(([k, exp]) => [k, exp ?? Infinity])) : value;
  }

  get(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiry !== null && entry.expiry <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : null;
    this.entries.set(key, { value, expiry });
    return this;
  }

  delete(key) {
    this.entries.delete(key);
  }

  toJSON() {
    const now = Date.now();
    return [...this.entries]
      .filter(([, e]) => e.expiry === null || e.expiry > now)
      .map(([key, e]) => [key, e.value instanceof Map
        ? { $map: [...e.value].map(([k, exp]) => [k, Number.isFinite(exp) ? exp : null]) } : e.value, e.expiry]);
  }
}
const STORE = STATE_FILE ? new SavedStore(saved?.store) : null;
const { default: MemoryAdapter } = STATE_FILE ? await import('oidc-provider/lib/adapters/memory_adapter.js') : {};

// ---------------------------------------------------------------------------------------------
// Keys
let keyCounter = saved?.keyCounter ?? 0;
function newSigningKey() {
  keyCounter += 1;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `k${keyCounter}`, alg: 'RS256', use: 'sig' };
}
let signingKeys = saved?.signingKeys ?? [newSigningKey()]; // the first key signs; all are published

const COOKIE_KEYS = saved?.cookieKeys ?? [crypto.randomBytes(32).toString('base64url')];

// ---------------------------------------------------------------------------------------------
// Provider (rebuilt on key rotation; the in-memory adapter is module-global, so sessions, grants,
// codes and refresh tokens survive a rebuild)
let issuer;
let provider;
let providerCallback;

const htmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${htmlEscape(title)}</title></head>`
    + `<body><h1>${htmlEscape(title)}</h1>${body}</body></html>`;
}

function buildProvider() {
  const p = new Provider(issuer, {
    ...(STORE ? { adapter: (model) => new MemoryAdapter(model, STORE) } : {}),
    clients: CLIENTS,
    jwks: { keys: signingKeys },
    cookies: { keys: COOKIE_KEYS },
    pkce: { required: () => true }, // default only forces PKCE on public clients; S256 is the only method in v9
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: claimsConfig(),
    conformIdTokenClaims: false, // else scope-released claims go to userinfo only, not into the ID token
    clientBasedCORS: () => false,
    findAccount: async (_ctx, id) => {
      const claims = Object.hasOwn(USERS, id) ? USERS[id] : undefined;
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { ...claims, sub: id }; } };
    },
    interactions: { url: (_ctx, interaction) => `${PREFIX}/interaction/${interaction.uid}` },
    // Entra-like: the Airflow client gets a refresh token on every code exchange, no need for
    // offline_access + prompt=consent. Without offline_access it dies with the IdP session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: {
      devInteractions: { enabled: false }, // own login/consent pages below (password checked)
      clientCredentials: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = page('Sign out', form.replace(
            '</form>',
            '<input type="hidden" name="logout" value="yes"/><button type="submit">Yes, sign me out</button></form>',
          ));
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // client credentials without `resource` get the Airflow API audience; the code flow without
        // `resource` gets an opaque access token for /userinfo (as JumpCloud does).
        defaultResource: async (ctx) => (ctx.oidc.params?.grant_type === 'client_credentials' ? API_AUDIENCE : undefined),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== API_AUDIENCE) throw new errors.InvalidTarget();
          return {
            scope: `airflow.api ${API_AUDIENCE}/.default`,
            audience: API_AUDIENCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: TTL.ClientCredentials,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      if (token.kind === 'AccessToken' && token.accountId && Object.hasOwn(USERS, token.accountId)) {
        // A user's JWT access token for the Airflow API (code flow with resource=api://airflow): the user's
        // claims named in its `access_token_claims` (e.g. Entra's oid, tid, groups), and the requesting client.
        const u = USERS[token.accountId] || {};
        const picked = Object.fromEntries((u.access_token_claims || []).filter((k) => k in u).map((k) => [k, u[k]]));
        return { ...picked, azp: token.clientId };
      }
      if (token.kind !== 'ClientCredentials') return undefined;
      const svc = SERVICE_CLIENTS[token.clientId] || {};
      // `claims` (optional): more claims of the client's tokens, e.g. Entra's oid/tid for an Entra-shaped principal.
      return { ...(svc.claims || {}), idtyp: 'app', roles: svc.roles || [], azp: token.clientId, appid: token.clientId };
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<pre id="error">${htmlEscape(JSON.stringify(out, null, 2))}</pre>`);
    },
    ttl: TTL,
  });
  p.proxy = false;
  for (const event of ['server_error', 'grant.error', 'authorization.error', 'end_session.error']) {
    p.on(event, (_ctx, err) => {
      if (event === 'server_error' || err?.statusCode >= 500) console.error(`oidc-provider ${event}:`, err);
    });
  }
  return p;
}

function rebuild() {
  provider = buildProvider();
  providerCallback = provider.callback();
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, {
    'Content-Type': type, 'Cache-Control': 'no-store', ...headers,
  });
  res.end(body);
}
const sendJson = (res, status, obj) => send(res, status, 'application/json', JSON.stringify(obj));
const sendHtml = (res, status, html) => send(res, status, 'text/html; charset=utf-8', html);

// ---------------------------------------------------------------------------------------------
// Login and consent pages (custom interactions; the password is checked)
function loginPage(uid, params, error, login = '') {
  const err = error ? `<p id="error" role="alert">${htmlEscape(error)}</p>` : '';
  return page('Sign in', `${err}<p>Client: ${htmlEscape(params.client_id)}</p>
<form method="post" action="${PREFIX}/interaction/${uid}/login" autocomplete="off">
<input type="hidden" name="prompt" value="login"/>
<label>Username <input name="login" value="${htmlEscape(login)}" autofocus required/></label>
<label>Password <input type="password" name="password" required/></label>
<button type="submit">Sign in</button>
</form>
<p><a href="${PREFIX}/interaction/${uid}/abort">Cancel</a></p>`);
}

function consentPage(uid, params, details, accountId) {
  const items = [
    ...(details.missingOIDCScope || []).map((s) => `scope: ${s}`),
    ...(details.missingOIDCClaims || []).map((c) => `claim: ${c}`),
    ...Object.entries(details.missingResourceScopes || {}).map(([r, s]) => `resource ${r}: ${s.join(' ')}`),
  ];
  return page('Authorize', `<p>${htmlEscape(accountId)}, allow ${htmlEscape(params.client_id)} to access:</p>
<ul>${items.map((i) => `<li>${htmlEscape(i)}</li>`).join('')}</ul>
<form method="post" action="${PREFIX}/interaction/${uid}/consent">
<input type="hidden" name="prompt" value="consent"/>
<button type="submit">Continue</button>
</form>
<p><a href="${PREFIX}/interaction/${uid}/abort">Cancel</a></p>`);
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    sendHtml(res, 400, page('Sign-in expired', `<p id="error">${htmlEscape(err.message)}</p>`));
    return;
  }
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Sign-in expired', '<p id="error">interaction mismatch</p>'));
    return;
  }
  const { prompt, params, session, grantId } = details;

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') sendHtml(res, 200, loginPage(uid, params));
    else if (prompt.name === 'consent') sendHtml(res, 200, consentPage(uid, params, prompt.details, session?.accountId));
    else sendHtml(res, 501, page('Error', `<p id="error">prompt ${htmlEscape(prompt.name)} not implemented</p>`));
    return;
  }

  if (req.method !== 'POST') {
    send(res, 405, 'text/plain', 'method not allowed', { Allow: 'POST' });
    return;
  }
  const body = querystring.parse(await readBody(req));

  if (action === 'login') {
    if (prompt.name !== 'login') {
      sendHtml(res, 400, page('Error', '<p id="error">no login pending</p>'));
      return;
    }
    const login = String(body.login || '');
    if (!Object.hasOwn(USERS, login) || body.password !== PASSWORD) {
      sendHtml(res, 200, loginPage(uid, params, 'Invalid username or password.', login));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: login, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (action === 'consent') {
    if (prompt.name !== 'consent') {
      sendHtml(res, 400, page('Error', '<p id="error">no consent pending</p>'));
      return;
    }
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scope] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
    await provider.interactionFinished(req, res, {
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: true });
    return;
  }

  send(res, 404, 'text/plain', 'not found');
}

// ---------------------------------------------------------------------------------------------
// Dev-only admin endpoints (IDP_TEST_ENDPOINTS=1), outside the issuer's paths:
//   POST   /_test/rotate-keys[?drop_old=1]  new RS256 key (kid k2, k3, ...) signs from now on; old ones
//                                            stay published unless drop_old=1. -> {kid, kids}
//   GET    /_test/users                     -> the user table
//   PUT    /_test/users/<id>                body: JSON claims; adds or replaces a user
//   DELETE /_test/users/<id>                removes a user (its refresh tokens stop working)
async function handleTest(req, res, url) {
  if (url.pathname === '/_test/rotate-keys' && req.method === 'POST') {
    const key = newSigningKey();
    signingKeys = url.searchParams.get('drop_old') === '1' ? [key] : [key, ...signingKeys];
    rebuild();
    sendJson(res, 200, { kid: key.kid, kids: signingKeys.map((k) => k.kid) });
    return;
  }
  if (url.pathname === '/_test/users' && req.method === 'GET') {
    sendJson(res, 200, USERS);
    return;
  }
  const m = url.pathname.match(/^\/_test\/users\/([^/]+)$/);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (req.method === 'PUT') {
      let claims;
      try {
        claims = JSON.parse(await readBody(req));
      } catch {
        sendJson(res, 400, { error: 'body must be JSON' });
        return;
      }
      if (!claims || typeof claims !== 'object' || Array.isArray(claims)) {
        sendJson(res, 400, { error: 'body must be a JSON object' });
        return;
      }
      const needsRebuild = Object.keys(claims).some((k) => !standardClaims.has(k) && !customClaimNames().includes(k));
      USERS[id] = claims;
      if (needsRebuild) rebuild(); // new custom claim name: re-derive the claims config
      sendJson(res, 200, { id, claims });
      return;
    }
    if (req.method === 'DELETE') {
      const existed = Object.hasOwn(USERS, id);
      delete USERS[id];
      sendJson(res, existed ? 200 : 404, { id, deleted: existed });
      return;
    }
  }
  sendJson(res, 404, { error: 'not found' });
}

// Accept client_secret_post for a client registered with client_secret_basic (and the reverse)
// by rewriting the request before oidc-provider sees it; the library allows one method per client.
const TOKEN_PATHS = new Set(['/token', '/token/introspection', '/token/revocation']);
async function normalizeClientAuth(req) {
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return;
  const auth = req.headers.authorization || '';
  if (auth.toLowerCase().startsWith('basic ')) {
    // nothing to do (and nothing to read) when the client uses the method it is registered with
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const id = querystring.unescape(decoded.slice(0, Math.max(decoded.indexOf(':'), 0)));
    if (REGISTERED_AUTH.get(id) !== 'client_secret_post') return;
  }
  const body = querystring.parse(await readBody(req));
  if (auth.toLowerCase().startsWith('basic ') && body.client_secret === undefined) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      const id = querystring.unescape(decoded.slice(0, i));
      const secret = querystring.unescape(decoded.slice(i + 1));
      if (REGISTERED_AUTH.get(id) === 'client_secret_post' && (body.client_id === undefined || body.client_id === id)) {
        delete req.headers.authorization;
        body.client_id = id;
        body.client_secret = secret;
      }
    }
  } else if (!auth && typeof body.client_id === 'string' && typeof body.client_secret === 'string'
      && REGISTERED_AUTH.get(body.client_id) === 'client_secret_basic') {
    const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
    req.headers.authorization = `Basic ${Buffer.from(`${enc(body.client_id)}:${enc(body.client_secret)}`).toString('base64')}`;
    delete body.client_id;
    delete body.client_secret;
  }
  // oidc-provider uses req.body when the stream was already consumed.
  req.body = body;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (TEST_ENDPOINTS && url.pathname.startsWith('/_test/')) {
    await handleTest(req, res, url);
    return;
  }
  let path = url.pathname;
  if (PREFIX) {
    if (path !== PREFIX && !path.startsWith(`${PREFIX}/`)) {
      send(res, 404, 'text/plain', 'not found');
      return;
    }
    req.originalUrl = req.url; // lets oidc-provider derive its mount path
    req.url = req.url.slice(PREFIX.length) || '/';
    path = path.slice(PREFIX.length) || '/';
  }
  const m = path.match(/^\/interaction\/([^/]+)(?:\/(login|consent|abort))?$/);
  if (m) {
    await handleInteraction(req, res, m[1], m[2]);
    return;
  }
  if (!STRICT_CLIENT_AUTH && req.method === 'POST' && TOKEN_PATHS.has(path)) {
    await normalizeClientAuth(req);
  }
  providerCallback(req, res);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('provider.mjs request error:', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err.message) });
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000;

server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}${PREFIX}`;
  rebuild();
  process.stdout.write(`OP_READY ${issuer}\n`);
});
server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${PORT}: ${err.message}`));

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`provider.mjs: ${signal}, shutting down`);
  if (STATE_FILE) {
    const state = { keyCounter, signingKeys, cookieKeys: COOKIE_KEYS, store: STORE };
    fs.writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state), { mode: 0o600 });
    fs.renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
  }
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
// The Python harness keeps our stdin open; EOF means it died without stopping us: do not linger.
if (flag('IDP_EXIT_ON_STDIN_EOF')) {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}
process.on('SIGINT', () => stop('SIGINT'));
