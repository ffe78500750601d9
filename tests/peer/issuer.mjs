#!/usr/bin/env node
// Test OpenID provider for robot-token's integration tests. TEST ONLY.
//
// A real OpenID provider (npm `oidc-provider`) on 127.0.0.1 plus a test-control
// API under /__test/. See README.md in this directory for the contract.
//
//   node issuer.mjs [--port N] [--access-ttl SECS] [--refresh-ttl SECS]
//                   [--no-rotate] [--https --cert PEM --key PEM] [--ignore-stdin]
//                   [--log FILE] [--bind ADDR] [--url-host NAME] [--deviate NAME]...
//
// stdout carries exactly one line, the ready line; everything else goes to stderr.

import { createHash, randomUUID } from 'node:crypto';
import { openSync, readFileSync, writeSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';

// ---------------------------------------------------------------------------
// stdout is reserved for the ready line: oidc-provider prints notices with
// console.info, so send every console method to the log (stderr, or the
// --log FILE) before loading it.
const logFileArg = process.argv.indexOf('--log');
const logFd = logFileArg > 0 && process.argv[logFileArg + 1]
  ? openSync(process.argv[logFileArg + 1], 'a') : 2;
const log = (...args) => {
  try {
    writeSync(logFd, `[issuer] ${format(...args)}\n`);
  } catch { /* a closed stderr must not kill the issuer */ }
};
console.log = log;
console.info = log;
console.debug = log;
console.warn = log;
console.error = log;

const { default: Provider, errors } = await import('oidc-provider');
const jose = await import('jose');

const HERE = dirname(fileURLToPath(import.meta.url));
const KEYS = join(HERE, 'keys');
const readJson = (name) => JSON.parse(readFileSync(join(KEYS, name), 'utf8'));

// ---------------------------------------------------------------------------
// Command line

// Ways real issuers bend RFC 6749/7523 (--deviate NAME; see README.md, "Deviations").
const DEVIATION_NAMES = [
  'refresh-400-empty', 'scope-invalid', 'cc-403-empty', 'token-quirks', 'strict-assertion-aud',
];

function parseArgs(argv) {
  const opts = {
    port: 0,
    accessTtl: 3600,
    refreshTtl: 14 * 24 * 3600,
    rotate: true,
    https: false,
    cert: undefined,
    key: undefined,
    ignoreStdin: false,
    bind: '127.0.0.1',
    urlHost: undefined,
    deviate: [],
  };
  const int = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (a) {
      case '--port': opts.port = int(a, value()); break;
      case '--access-ttl': opts.accessTtl = int(a, value()); break;
      case '--refresh-ttl': opts.refreshTtl = int(a, value()); break;
      case '--no-rotate': opts.rotate = false; break;
      case '--https': opts.https = true; break;
      case '--cert': opts.cert = value(); break;
      case '--key': opts.key = value(); break;
      case '--ignore-stdin': opts.ignoreStdin = true; break;
      case '--log': value(); break; // handled above
      case '--bind': opts.bind = value(); break;
      case '--url-host': opts.urlHost = value(); break;
      case '--deviate': opts.deviate.push(value()); break;
      case '-h': case '--help':
        log('usage: node issuer.mjs [--port N] [--access-ttl SECS] [--refresh-ttl SECS] [--no-rotate] [--https --cert PEM --key PEM] [--ignore-stdin] [--log FILE] [--bind ADDR] [--url-host NAME] [--deviate NAME]...');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (opts.accessTtl < 1) throw new Error('--access-ttl must be >= 1');
  if (opts.refreshTtl < 1) throw new Error('--refresh-ttl must be >= 1');
  if (opts.https && (!opts.cert || !opts.key)) throw new Error('--https needs --cert and --key');
  // Tests use loopback only.
  if (!/^127\.\d+\.\d+\.\d+$/.test(opts.bind) && opts.bind !== '::1') {
    throw new Error(`--bind ${opts.bind}: only a loopback address (127.0.0.0/8 or ::1)`);
  }
  for (const d of opts.deviate) {
    if (!DEVIATION_NAMES.includes(d)) throw new Error(`--deviate ${d}: one of ${DEVIATION_NAMES.join(', ')}`);
  }
  return opts;
}

let OPTS;
try {
  OPTS = parseArgs(process.argv.slice(2));
} catch (err) {
  log(err.message);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Life cycle: die with the harness.

function shutdown(why) {
  log(`exiting: ${why}`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => shutdown('SIGHUP'));
if (!OPTS.ignoreStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.on('data', () => {}); // content is ignored
  process.stdin.resume();
}
process.on('unhandledRejection', (err) => log('unhandled rejection:', err));

// ---------------------------------------------------------------------------
// Fixed test data

const ACCOUNT = 'robot-user';
const DEFAULT_RESOURCE = 'https://wlcg.cern.ch/jwt/v1/any';
const CI_ISSUER = 'https://token.actions.githubusercontent.com';
// Audiences that are not http(s) URLs are carried as this URN (reversible).
const AUD_URN_PREFIX = 'urn:robot-token-peer:audience:';

const GT = {
  refresh: 'refresh_token',
  cc: 'client_credentials',
  device: 'urn:ietf:params:oauth:grant-type:device_code',
  exchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
  code: 'authorization_code',
};
const GRANT_SHORT = {
  [GT.device]: 'device_code',
  [GT.exchange]: 'token_exchange',
};
const ALL_GRANTS = [GT.refresh, GT.cc, GT.device, GT.exchange, GT.code];
const REDIRECT_URIS = ['http://127.0.0.1/callback'];

const TT = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  access: 'urn:ietf:params:oauth:token-type:access_token',
  refresh: 'urn:ietf:params:oauth:token-type:refresh_token',
  id: 'urn:ietf:params:oauth:token-type:id_token',
};

const providerJwk = readJson('provider.jwk.json');
const providerPubJwk = readJson('provider.pub.jwk.json');
const ciJwk = readJson('ci.jwk.json');
const ciPubJwk = readJson('ci.pub.jwk.json');

const CLIENTS = [
  {
    client_id: 'robot-basic',
    client_secret: 'robot-basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'robot-post',
    client_secret: 'robot-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'robot-pkjwt-rsa',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [readJson('client-rsa.pub.jwk.json')] },
  },
  {
    client_id: 'robot-pkjwt-ec',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [readJson('client-ec.pub.jwk.json')] },
  },
].map((c) => ({
  ...c,
  grant_types: ALL_GRANTS,
  response_types: ['code'],
  redirect_uris: REDIRECT_URIS,
}));
CLIENTS.push({
  client_id: 'robot-public',
  token_endpoint_auth_method: 'none',
  grant_types: [GT.device, GT.refresh],
  response_types: [],
  redirect_uris: [],
});

// ---------------------------------------------------------------------------
// Audience <-> resource, scopes

// IAM/CILogon take `audience`; oidc-provider implements RFC 8707 `resource`,
// which must be an absolute URI. http(s) audiences are used as the resource
// unchanged; anything else (`condor.example.org:9618`, `any`, several
// space-separated audiences) is carried as AUD_URN_PREFIX + percent-encoding.
function audienceToResource(aud) {
  if (/^https?:\/\/[^\s#]+$/i.test(aud) && URL.canParse(aud)) return aud;
  return AUD_URN_PREFIX + encodeURIComponent(aud);
}
function resourceToAudience(resource) {
  if (resource.startsWith(AUD_URN_PREFIX)) {
    return decodeURIComponent(resource.slice(AUD_URN_PREFIX.length));
  }
  return resource;
}

const splitScope = (s) => (typeof s === 'string' ? s.split(' ').filter(Boolean) : []);
const uniq = (arr) => [...new Set(arr)];

// Every scope is grantable except `forbidden*` ones, which are silently dropped
// (narrowed) so tests can check narrowing.
const isGrantable = (s) => !!s && !s.startsWith('forbidden');

// Does the `have` scope cover the `want` scope? Exact match, or a WLCG path
// scope (`storage.read:/a`) covering a sub-path (`storage.read:/a/b`).
function covers(have, want) {
  if (have === want) return true;
  const h = have.indexOf(':');
  const w = want.indexOf(':');
  if (h < 0 || w < 0 || have.slice(0, h) !== want.slice(0, w)) return false;
  const hp = have.slice(h + 1);
  const wp = want.slice(w + 1);
  if (!hp.startsWith('/') || !wp.startsWith('/')) return false;
  if (hp === '/') return true;
  return wp.startsWith(hp.endsWith('/') ? hp : `${hp}/`);
}

// The resource server's scope list is built from whatever is being requested
// or refreshed in this request, so arbitrary storage paths work.
function scopeUniverse(ctx) {
  const oidc = ctx?.oidc;
  if (!oidc) return [];
  const out = [];
  out.push(...splitScope(oidc.params?.scope));
  for (const name of ['RefreshToken', 'DeviceCode', 'AuthorizationCode']) {
    out.push(...splitScope(oidc.entities?.[name]?.scope));
  }
  out.push(...splitScope(oidc.deviceCode?.params?.scope));
  return uniq(out).filter(isGrantable);
}

function resourceServerInfo(resource, scopes, accessTokenTTL = OPTS.accessTtl) {
  return {
    scope: uniq(scopes).filter(isGrantable).join(' '),
    audience: resourceToAudience(resource),
    accessTokenFormat: 'jwt',
    accessTokenTTL,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// ---------------------------------------------------------------------------
// Storage: an unbounded in-memory adapter. (oidc-provider's own memory adapter
// is an LRU capped at ~1000 entries, which a long test run could overflow and
// evict grants from under live refresh tokens.)

const STORE = new Map(); // `${model}:${id}` -> payload
const GRANT_INDEX = new Map(); // grantId -> Set of keys
const USER_CODE_INDEX = new Map(); // userCode -> key
const UID_INDEX = new Map(); // session uid -> key

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, _expiresIn) {
    const key = this.key(id);
    STORE.set(key, payload);
    if (payload.grantId) {
      if (!GRANT_INDEX.has(payload.grantId)) GRANT_INDEX.set(payload.grantId, new Set());
      GRANT_INDEX.get(payload.grantId).add(key);
    }
    if (payload.userCode) USER_CODE_INDEX.set(payload.userCode, key);
    if (this.model === 'Session' && payload.uid) UID_INDEX.set(payload.uid, key);
  }

  async find(id) {
    return STORE.get(this.key(id));
  }

  async findByUserCode(userCode) {
    const key = USER_CODE_INDEX.get(userCode);
    return key ? STORE.get(key) : undefined;
  }

  async findByUid(uid) {
    const key = UID_INDEX.get(uid);
    return key ? STORE.get(key) : undefined;
  }

  async consume(id) {
    const p = STORE.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    STORE.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const keys = GRANT_INDEX.get(grantId);
    if (!keys) return;
    for (const key of [...keys]) {
      if (key.startsWith(`${this.model}:`)) {
        STORE.delete(key);
        keys.delete(key);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Pages (kept minimal; approve.mjs drives them like a browser would)

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

async function userCodeInputSource(ctx, form, out, err) {
  let msg = '<p>Enter the code displayed on your device</p>';
  if (err && (err.userCode || err.name === 'NoCodeError')) {
    msg = '<p class="error" id="error">The code you entered is incorrect. Try again</p>';
  } else if (err && err.name === 'AbortedError') {
    msg = '<p class="error" id="error">The Sign-in request was interrupted</p>';
  } else if (err) {
    msg = `<p class="error" id="error">There was an error processing your request: ${esc(out?.error)}</p>`;
  }
  ctx.type = 'html';
  ctx.body = page('Sign-in', `${msg}\n${form}\n<button type="submit" form="op.deviceInputForm">Continue</button>`);
}

async function userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
  ctx.type = 'html';
  ctx.body = page('Device Login Confirmation', `<p>Client <strong>${esc(client.clientId)}</strong> wants access.
The following code should be displayed on your device: <code id="user_code">${esc(userCode)}</code></p>
${form}
<button autofocus type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">[ Abort ]</button>`);
}

async function successSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Sign-in Success', '<p id="success">Your sign-in was successful, you can now close this page.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('oops! something went wrong', `<pre id="error">${esc(JSON.stringify(out, null, 2))}</pre>`);
}

// ---------------------------------------------------------------------------
// Test-control state

const stats = { requests: {}, grants: {}, refresh_reused: 0 };
// Every refresh token ever presented (sha256), across resets: a second presentation
// of one is the replay a client must never make (it revokes the family).
const presentedRefresh = new Set();
let faults = []; // FIFO of { kind, times, target, ...spec }
let faultsApplied = 0;
const device = {
  interval: null, slowDownOnce: false, expiresIn: null, answer: null, decorate: [],
};
let clockSkew = 0; // seconds added to the Date header of every answer (POST /__test/clock)

function resetState() {
  stats.requests = {
    discovery: 0, token: 0, jwks: 0, device: 0, revocation: 0, other: 0,
  };
  stats.grants = {};
  stats.refresh_reused = 0;
  faults = [];
  faultsApplied = 0;
  device.interval = null;
  device.slowDownOnce = false;
  device.expiresIn = null;
  device.answer = null;
  device.decorate = [];
  clockSkew = 0;
}
resetState();

// ---------------------------------------------------------------------------
// Server: listen first (port 0 -> pick one), then build the provider with the
// now-known issuer URL.

let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = OPTS.https
  ? https.createServer({ cert: readFileSync(OPTS.cert), key: readFileSync(OPTS.key) }, (q, s) => handler(q, s))
  : http.createServer((q, s) => handler(q, s));
server.on('clientError', (err, socket) => { socket.destroy(); });

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(OPTS.port, OPTS.bind, resolve);
});
const PORT = server.address().port;
const URL_HOST = OPTS.urlHost ?? (OPTS.bind.includes(':') ? `[${OPTS.bind}]` : OPTS.bind);
const ISSUER = `${OPTS.https ? 'https' : 'http'}://${URL_HOST}:${PORT}`;
const DEVIATIONS = new Set(OPTS.deviate);

const providerKeys = jose.createLocalJWKSet({ keys: [providerPubJwk] });
const ciKeys = jose.createLocalJWKSet({ keys: [ciPubJwk] });
const providerPrivateKey = await jose.importJWK(providerJwk, 'RS256');
const ciPrivateKey = await jose.importJWK(ciJwk, 'RS256');

const ttlAccess = (ctx, token) => token?.resourceServer?.accessTokenTTL || OPTS.accessTtl;

const provider = new Provider(ISSUER, {
  adapter: TestAdapter,
  clients: CLIENTS,
  jwks: { keys: [providerJwk] },
  cookies: { keys: ['robot-token-test-peer-cookie-key'] },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  scopes: ['openid', 'offline_access'],
  responseTypes: ['code'],
  rotateRefreshToken: OPTS.rotate,
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  ttl: {
    AccessToken: ttlAccess,
    ClientCredentials: ttlAccess,
    RefreshToken: () => OPTS.refreshTtl,
    Grant: () => Math.max(365 * 24 * 3600, OPTS.refreshTtl * 10),
    Session: () => 24 * 3600,
    Interaction: () => 3600,
    DeviceCode: () => device.expiresIn ?? 600,
    IdToken: () => 3600,
    AuthorizationCode: () => 60,
    BackchannelAuthenticationRequest: () => 600,
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  renderError,
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        // Every access token carries `scope`, even when nothing was granted.
        if (jwt.payload.scope === undefined) jwt.payload.scope = '';
        // Several space-separated audiences (`audience=a b`) become an aud array.
        if (typeof jwt.payload.aud === 'string' && jwt.payload.aud.includes(' ')) {
          jwt.payload.aud = splitScope(jwt.payload.aud);
        }
        // token-quirks: aud is the scope string (seen in the wild), no wlcg.ver.
        if (DEVIATIONS.has('token-quirks')) {
          jwt.payload.aud = jwt.payload.scope;
          delete jwt.payload['wlcg.ver'];
        }
      },
    },
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true, allowedPolicy: async () => true },
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      userCodeInputSource,
      userCodeConfirmSource,
      successSource,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf[0] : DEFAULT_RESOURCE),
      // Refreshes without an audience keep the audience that was granted.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => resourceServerInfo(resource, scopeUniverse(ctx)),
    },
  },
});

// -- Logging of the real reason behind oidc-provider's generic errors -------

function describeError(err) {
  const parts = [`${err?.error ?? err?.name ?? 'error'}: ${err?.error_description ?? err?.message ?? ''}`];
  if (err?.error_detail) parts.push(`detail=${err.error_detail}`);
  let { cause } = err ?? {};
  while (cause) {
    parts.push(`cause=${cause.message ?? cause}`);
    ({ cause } = cause);
  }
  return parts.join(' ');
}
for (const ev of ['grant.error', 'device_authorization.error', 'code_verification.error',
  'device_resume.error', 'authorization.error', 'discovery.error', 'jwks.error',
  'introspection.error', 'revocation.error', 'userinfo.error', 'end_session.error',
  'pushed_authorization_request.error']) {
  provider.on(ev, (ctx, err) => {
    const gt = ctx?.oidc?.params?.grant_type;
    const client = ctx?.oidc?.client?.clientId ?? '-';
    log(`${ev} ${ctx?.method} ${ctx?.path} client=${client}${gt ? ` grant_type=${gt}` : ''} ${describeError(err)}`);
  });
}
provider.on('server_error', (ctx, err) => log(`server_error ${ctx?.method} ${ctx?.path}`, err));
provider.on('grant.revoked', (ctx, grantId) => log(`grant.revoked grant=${grantId} (route=${ctx?.oidc?.route})`));
provider.on('grant.success', (ctx) => log(`grant.success client=${ctx.oidc.client?.clientId} grant_type=${ctx.oidc.params.grant_type}`));
provider.on('refresh_token.consumed', (rt) => log(`refresh_token.consumed grant=${rt.grantId}`));

// ---------------------------------------------------------------------------
// Helpers for issuing real provider tokens outside a grant handler

async function issueTokens({
  client, accountId, scopes, resource, gty, accessTtl, expired, withRefresh,
}) {
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  const oidcScopes = scopes.filter((s) => s === 'openid' || s === 'offline_access');
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  grant.addResourceScope(resource, scopes.join(' '));
  const grantId = await grant.save();

  const info = resourceServerInfo(resource, scopes, accessTtl || OPTS.accessTtl);
  const at = new provider.AccessToken({
    accountId, client, grantId, gty,
  });
  at.resourceServer = new provider.ResourceServer(resource, info);
  at.scope = scopes.join(' ') || undefined;
  if (expired) {
    const now = Math.floor(Date.now() / 1000);
    const ttl = info.accessTokenTTL;
    at.iat = now - ttl - 120;
    at.exp = now - 120;
  }
  const accessToken = await at.save();

  let refreshToken;
  if (withRefresh) {
    const rt = new provider.RefreshToken({
      accountId, client, grantId, gty, resource, rotations: 0, scope: scopes.join(' '),
    });
    refreshToken = await rt.save();
  }
  return {
    accessToken, refreshToken, expiresIn: expired ? 0 : info.accessTokenTTL, scope: at.scope, grantId,
  };
}

async function signWith(keyName, claims, { raw = false, typ = 'JWT' } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const key = keyName === 'ci' ? ciPrivateKey : providerPrivateKey;
  const kid = keyName === 'ci' ? ciJwk.kid : providerJwk.kid;
  const payload = raw ? { ...claims } : {
    iss: keyName === 'ci' ? CI_ISSUER : ISSUER,
    iat: now,
    exp: now + 600,
    jti: randomUUID(),
    ...claims,
  };
  return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ }).sign(key);
}

// ---------------------------------------------------------------------------
// Token exchange (RFC 8693): not built into oidc-provider.

async function tokenExchangeHandler(ctx) {
  const { params, client } = ctx.oidc;
  for (const p of ['subject_token', 'subject_token_type']) {
    if (!params[p]) throw new errors.InvalidRequest(`missing required parameter '${p}'`);
  }
  if (![TT.jwt, TT.access].includes(params.subject_token_type)) {
    throw new errors.InvalidRequest('unsupported subject_token_type (use urn:ietf:params:oauth:token-type:jwt or access_token)');
  }
  if (params.requested_token_type && ![TT.access, TT.jwt].includes(params.requested_token_type)) {
    throw new errors.InvalidRequest('unsupported requested_token_type');
  }
  if (params.actor_token) {
    throw new errors.InvalidRequest('actor_token is not supported');
  }

  let iss;
  try {
    ({ iss } = jose.decodeJwt(params.subject_token));
  } catch (cause) {
    throw new errors.InvalidGrant('subject_token is not a JWT', undefined, { cause });
  }
  let fromCi;
  if (iss === ISSUER) fromCi = false;
  else if (iss === CI_ISSUER) fromCi = true;
  else throw new errors.InvalidGrant(`subject_token issuer ${JSON.stringify(iss)} is not trusted`);

  let subject;
  try {
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, fromCi ? ciKeys : providerKeys, {
      issuer: iss,
      algorithms: ['RS256'],
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (cause) {
    const e = new errors.InvalidGrant(`subject_token invalid: ${cause.code ?? ''} ${cause.message}`);
    e.cause = cause;
    throw e;
  }

  const subjectScopes = splitScope(subject.scope);
  const requested = params.scope ? uniq(splitScope(params.scope)) : subjectScopes;
  const scopes = requested.filter((s) => isGrantable(s)
    && (fromCi || subjectScopes.some((have) => covers(have, s))));

  let resource = params.resource ?? DEFAULT_RESOURCE;
  if (Array.isArray(resource)) {
    if (resource.length !== 1) throw new errors.InvalidTarget('only a single audience/resource is supported');
    [resource] = resource;
  }

  const withRefresh = scopes.includes('offline_access') && client.grantTypeAllowed(GT.refresh);
  const out = await issueTokens({
    client, accountId: subject.sub, scopes, resource, gty: 'token_exchange', withRefresh,
  });
  log(`token-exchange client=${client.clientId} sub=${subject.sub} from=${fromCi ? 'ci' : 'provider'} scope="${out.scope ?? ''}" aud=${resourceToAudience(resource)}`);

  ctx.body = {
    access_token: out.accessToken,
    issued_token_type: TT.access,
    token_type: 'Bearer',
    expires_in: out.expiresIn,
    ...(out.scope ? { scope: out.scope } : {}),
    ...(out.refreshToken ? { refresh_token: out.refreshToken } : {}),
  };
}

provider.registerGrantType(GT.exchange, tokenExchangeHandler, [
  'subject_token', 'subject_token_type', 'requested_token_type',
  'actor_token', 'actor_token_type', 'scope', 'resource',
], ['resource']);

// ---------------------------------------------------------------------------
// Koa middleware (mounted before the provider's own routes)

async function readRawBody(ctx) {
  if (ctx.state.rawBody !== undefined) return ctx.state.rawBody;
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > 1024 * 1024) ctx.throw(413, 'body too large');
    chunks.push(chunk);
  }
  ctx.state.rawBody = Buffer.concat(chunks).toString('utf8');
  return ctx.state.rawBody;
}

function formToObject(raw) {
  const out = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

const isForm = (ctx) => ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded');
const tokenPath = () => provider.pathFor('token');
const deviceAuthPath = () => provider.pathFor('device_authorization');
const DISCOVERY_PATHS = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);

function classify(path) {
  if (DISCOVERY_PATHS.has(path)) return 'discovery';
  if (path === tokenPath()) return 'token';
  if (path === provider.pathFor('jwks')) return 'jwks';
  if (path === deviceAuthPath()) return 'device';
  if (path === provider.pathFor('revocation')) return 'revocation';
  return 'other';
}

// 1. Access log + counting (before faults, so faulted requests count too).
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) return next();
  const started = Date.now();
  const kind = classify(ctx.path);
  stats.requests[kind] += 1;
  if (clockSkew) ctx.set('Date', new Date(Date.now() + clockSkew * 1000).toUTCString());
  if (kind === 'token' && isForm(ctx)) {
    const form = formToObject(await readRawBody(ctx));
    ctx.state.form = form;
    const gt = typeof form.grant_type === 'string' ? form.grant_type : 'missing';
    const short = GRANT_SHORT[gt] ?? gt;
    stats.grants[short] = (stats.grants[short] ?? 0) + 1;
    if (gt === GT.refresh && typeof form.refresh_token === 'string') {
      const h = createHash('sha256').update(form.refresh_token).digest('hex');
      if (presentedRefresh.has(h)) stats.refresh_reused += 1;
      presentedRefresh.add(h);
    }
  } else if (kind === 'device' && isForm(ctx)) {
    ctx.state.form = formToObject(await readRawBody(ctx));
  }
  try {
    await next();
  } finally {
    const gt = ctx.state.form?.grant_type ? ` grant_type=${ctx.state.form.grant_type}` : '';
    const fault = ctx.state.fault ? ` FAULT=${ctx.state.fault}` : '';
    log(`${ctx.method} ${ctx.path}${gt} -> ${ctx.state.fault === 'hang' ? '(hung)' : ctx.status} ${Date.now() - started}ms${fault}`);
  }
});

// 2. Test-control API.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test/')) return next();
  const route = `${ctx.method} ${ctx.path}`;
  let body = {};
  if (ctx.method === 'POST') {
    const raw = await readRawBody(ctx);
    if (raw.trim()) {
      try {
        body = JSON.parse(raw);
      } catch {
        ctx.status = 400;
        ctx.body = { error: 'body must be JSON' };
        return undefined;
      }
    }
  }
  const bad = (msg) => {
    ctx.status = 400;
    ctx.body = { error: msg };
  };
  try {
    switch (route) {
      case 'GET /__test/stats':
        ctx.body = {
          ...stats,
          faults: { applied: faultsApplied, pending: faults.map((f) => ({ ...f })) },
          device: { ...device },
        };
        return undefined;
      case 'POST /__test/reset':
        resetState();
        ctx.body = { ok: true };
        return undefined;
      case 'GET /__test/jwks':
        ctx.body = { keys: [providerPubJwk] };
        return undefined;
      case 'POST /__test/fault': {
        const kinds = ['status', '429', 'slow', 'hang', 'reset_after_processing', 'truncated_json',
          'empty', 'html_login', 'invalid_grant', 'invalid_client', 'no_access_token', 'not_jwt',
          'expired_jwt', 'unsupported_token_type', 'claims_jwt', 'echo'];
        const kind = String(body.kind);
        if (!kinds.includes(kind)) return bad(`unknown fault kind ${kind}; one of ${kinds.join(', ')}`);
        const times = body.times === undefined ? 1 : Number(body.times);
        if (!Number.isInteger(times) || times < 1) return bad('times must be a positive integer');
        const target = body.path === undefined ? 'token' : String(body.path);
        if (!['token', 'discovery', 'revocation', 'device'].includes(target)) {
          return bad('path must be "token", "discovery", "revocation" or "device"');
        }
        if (kind === 'claims_jwt' && typeof body.payload !== 'string') {
          return bad('claims_jwt needs "payload": the claims as JSON text');
        }
        if (kind === 'status' && ![500, 502, 503].includes(Number(body.status ?? 500))) {
          return bad('status must be 500, 502 or 503');
        }
        const f = {
          ...body, kind, times, path: target,
        };
        faults.push(f);
        ctx.body = { ok: true, pending: faults.length };
        return undefined;
      }
      case 'POST /__test/device': {
        if ('interval' in body) {
          if (body.interval !== null && !(Number.isInteger(body.interval) && body.interval >= 0)) {
            return bad('interval must be a non-negative integer or null');
          }
          device.interval = body.interval;
        }
        if ('slow_down_once' in body) device.slowDownOnce = !!body.slow_down_once;
        if ('expires_in' in body) {
          if (body.expires_in !== null && !(Number.isInteger(body.expires_in) && body.expires_in > 0)) {
            return bad('expires_in must be a positive integer or null');
          }
          device.expiresIn = body.expires_in;
        }
        if ('answer' in body) {
          // Raw JSON members written verbatim into the answer, e.g. {"interval":"18446744073709551615"}:
          // numbers JavaScript cannot hold reach the client digit for digit.
          if (body.answer !== null && (typeof body.answer !== 'object'
              || !Object.values(body.answer).every((v) => typeof v === 'string' && /^-?[0-9.eE+-]+$/.test(v)))) {
            return bad('answer must be null or an object of JSON number texts');
          }
          device.answer = body.answer;
        }
        if ('decorate' in body) {
          // true: the user code and both URIs; or a list of those field names.
          const all = ['user_code', 'verification_uri', 'verification_uri_complete'];
          const d = body.decorate === true ? all : body.decorate === false || body.decorate === null ? [] : body.decorate;
          if (!Array.isArray(d) || !d.every((f) => all.includes(f))) {
            return bad(`decorate must be a boolean or a list of ${all.join(', ')}`);
          }
          device.decorate = d;
        }
        ctx.body = { ok: true, ...device };
        return undefined;
      }
      case 'POST /__test/clock': {
        if (!Number.isInteger(body.skew)) return bad('skew must be an integer number of seconds');
        clockSkew = body.skew;
        ctx.body = { ok: true, skew: clockSkew };
        return undefined;
      }
      case 'POST /__test/sign': {
        if (!['ci', 'provider'].includes(body.key)) return bad('key must be "ci" or "provider"');
        if (body.claims === null || typeof body.claims !== 'object') return bad('claims must be an object');
        ctx.body = { jwt: await signWith(body.key, body.claims, { raw: !!body.raw, typ: body.typ }) };
        return undefined;
      }
      case 'POST /__test/mint': {
        const clientId = body.client_id ?? 'robot-basic';
        const client = await provider.Client.find(String(clientId));
        if (!client) return bad(`unknown client ${clientId}`);
        const requested = uniq(splitScope(body.scope ?? 'openid offline_access'));
        const scopes = requested.filter(isGrantable);
        const resource = body.audience ? audienceToResource(String(body.audience)) : DEFAULT_RESOURCE;
        if (body.access_ttl !== undefined && !(Number.isInteger(body.access_ttl) && body.access_ttl > 0)) {
          return bad('access_ttl must be a positive integer');
        }
        const out = await issueTokens({
          client,
          accountId: body.sub ? String(body.sub) : ACCOUNT,
          scopes,
          resource,
          gty: 'device_code',
          accessTtl: body.access_ttl,
          expired: !!body.expired,
          withRefresh: client.grantTypeAllowed(GT.refresh),
        });
        log(`mint client=${clientId} scope="${out.scope ?? ''}" aud=${resourceToAudience(resource)} expired=${!!body.expired}`);
        ctx.body = {
          access_token: out.accessToken,
          ...(out.refreshToken ? { refresh_token: out.refreshToken } : {}),
          expires_in: out.expiresIn,
          scope: out.scope ?? '',
          token_type: 'Bearer',
        };
        return undefined;
      }
      default:
        ctx.status = 404;
        ctx.body = { error: `no test route ${route}` };
        return undefined;
    }
  } catch (err) {
    log(`control ${route} failed:`, err);
    ctx.status = 500;
    ctx.body = { error: String(err?.message ?? err) };
    return undefined;
  }
});

// 3. Minimal interaction handler: log in robot-user, grant everything
//    requested, or deny.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return next();
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    log(`interaction ${uid}: ${describeError(err)}`);
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Interaction error', `<p id="error">${esc(err.message)}</p>`);
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Interaction error', '<p id="error">interaction cookie does not match this URL</p>');
    return undefined;
  }
  const { prompt, params } = details;

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = page('Sign-in', `<p>Client <strong>${esc(params.client_id)}</strong></p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="username" placeholder="Username" autofocus>
<input type="password" name="password" placeholder="Password">
<button type="submit">Sign-in</button>
</form>`);
    } else {
      const wanted = [
        ...(prompt.details.missingOIDCScope ?? []),
        ...Object.values(prompt.details.missingResourceScopes ?? {}).flat(),
      ];
      ctx.body = page('Authorize', `<p>Client <strong>${esc(params.client_id)}</strong> asks for:</p>
<ul>${uniq(wanted).map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<form id="consent" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit">Allow</button>
</form>
<form id="deny" method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit">Deny</button>
</form>`);
    }
    return undefined;
  }
  if (ctx.method !== 'POST' || !action) {
    ctx.status = 405;
    return undefined;
  }

  let result;
  if (action === 'login') {
    const form = formToObject(await readRawBody(ctx));
    if (prompt.name !== 'login') {
      ctx.status = 400;
      ctx.body = 'not a login interaction';
      return undefined;
    }
    if (form.username !== ACCOUNT) {
      log(`interaction ${uid}: login refused for ${JSON.stringify(form.username)} (only ${ACCOUNT})`);
      ctx.status = 200;
      ctx.type = 'html';
      ctx.body = page('Sign-in', `<p id="error">unknown user</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="username"><input type="password" name="password">
<button type="submit">Sign-in</button></form>`);
      return undefined;
    }
    result = { login: { accountId: ACCOUNT } };
  } else if (action === 'confirm') {
    await readRawBody(ctx);
    if (prompt.name !== 'consent') {
      ctx.status = 400;
      ctx.body = 'not a consent interaction';
      return undefined;
    }
    const { accountId } = details.session;
    let grant;
    if (details.grantId) grant = await provider.Grant.find(details.grantId);
    if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    result = { consent: { grantId } };
  } else {
    await readRawBody(ctx);
    result = { error: 'access_denied', error_description: 'End-User denied the request' };
  }
  log(`interaction ${uid} ${prompt.name} -> ${action}`);
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.redirect(returnTo);
  ctx.status = 303;
  return undefined;
});

// 4. Fault injection (token endpoint, or discovery with "path":"discovery").
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

function writeRaw(ctx, status, headers, body) {
  ctx.respond = false;
  const buf = Buffer.from(body ?? '');
  ctx.res.writeHead(status, { ...headers, 'content-length': String(buf.length), 'cache-control': 'no-store' });
  ctx.res.end(buf);
}

async function expiredJwtFor(ctx) {
  const form = ctx.state.form ?? {};
  let clientId = form.client_id;
  const auth = ctx.get('authorization');
  if (!clientId && auth.toLowerCase().startsWith('basic ')) {
    clientId = decodeURIComponent(Buffer.from(auth.slice(6), 'base64').toString().split(':')[0]);
  }
  const now = Math.floor(Date.now() / 1000);
  const scope = typeof form.scope === 'string' ? form.scope : 'openid offline_access';
  const aud = typeof form.audience === 'string' ? form.audience : (form.resource ?? DEFAULT_RESOURCE);
  return signWith('provider', {
    sub: ACCOUNT,
    aud,
    scope,
    client_id: clientId ?? 'robot-basic',
    iat: now - 7200,
    exp: now - 3600,
  }, { typ: 'at+jwt' });
}

// A correctly signed access token whose claims are exactly `payload` (JSON text, so
// that numbers JavaScript cannot hold, such as -9223372036854775808, survive).
function signRawPayload(payload) {
  return new jose.CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'RS256', kid: providerJwk.kid, typ: 'at+jwt' })
    .sign(providerPrivateKey);
}

// What a careless or hostile issuer puts in error_description: every secret the
// request carried (refresh token, client secret, assertion, subject token, device
// code, the Authorization header and its decoded Basic credentials), wrapped in
// terminal escapes, bidi overrides, newlines, a NUL and Nagios' perfdata separator,
// and padded far past any sane length.
const HOSTILE = '\u001b[31m\u001b]0;owned\u0007\r\n\u202eevil\u2066\u200f|bad=1;2;3 \u0000\u009b';
function echoOf(ctx, pad = 3000) {
  const form = ctx.state.form ?? {};
  const sent = ['refresh_token', 'client_secret', 'client_assertion', 'subject_token', 'device_code']
    .filter((k) => typeof form[k] === 'string')
    .map((k) => `${k}=${form[k]}`);
  const auth = ctx.get('authorization');
  if (auth) {
    sent.push(`authorization=${auth}`);
    if (auth.toLowerCase().startsWith('basic ')) {
      const raw = Buffer.from(auth.slice(6), 'base64').toString();
      sent.push(`basic=${raw}`, `basic-decoded=${raw.split(':').map(decodeURIComponent).join(':')}`);
    }
  }
  return `${HOSTILE} you sent: ${sent.join(' ')} ${HOSTILE} ${'x'.repeat(pad)}`;
}

provider.use(async (ctx, next) => {
  const kind = classify(ctx.path);
  const target = (kind === 'token' || kind === 'revocation') && ctx.method === 'POST' ? kind
    : kind === 'discovery' && ctx.method === 'GET' ? 'discovery'
      : kind === 'device' && ctx.method === 'POST' ? 'device' : undefined;
  const idx = target ? faults.findIndex((f) => f.path === target) : -1;
  if (idx < 0) return next();
  const f = faults[idx];
  f.times -= 1;
  if (f.times <= 0) faults.splice(idx, 1);
  faultsApplied += 1;
  ctx.state.fault = f.kind;
  const json = { 'content-type': 'application/json; charset=utf-8' };
  const html = { 'content-type': 'text/html; charset=utf-8' };

  switch (f.kind) {
    case 'status': {
      const status = Number(f.status ?? 500);
      const text = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status];
      ctx.status = status;
      return writeRaw(ctx, status, html, `<html><head><title>${status} ${text}</title></head><body><center><h1>${status} ${text}</h1></center><hr><center>nginx</center></body></html>\n`);
    }
    case '429':
      ctx.status = 429;
      return writeRaw(ctx, 429, { ...html, 'retry-after': String(f.retry_after ?? 1) }, '<html><body><h1>429 Too Many Requests</h1></body></html>\n');
    case 'slow':
      await sleep(Number(f.delay_ms ?? 1000));
      return next();
    case 'hang':
      ctx.respond = false;
      await new Promise((resolve) => {
        if (ctx.req.socket.destroyed) resolve();
        ctx.req.socket.once('close', resolve);
      });
      return undefined;
    case 'reset_after_processing': {
      await next(); // the provider really processes it (refresh tokens rotate)
      const payload = typeof ctx.body === 'string' || Buffer.isBuffer(ctx.body)
        ? Buffer.from(ctx.body) : Buffer.from(JSON.stringify(ctx.body ?? {}));
      log(`reset_after_processing: provider answered ${ctx.status} (${payload.length} bytes), dropping the connection mid-body`);
      ctx.respond = false;
      const { res } = ctx;
      res.writeHead(ctx.status, {
        'content-type': ctx.response.get('content-type') || 'application/json; charset=utf-8',
        'content-length': String(payload.length),
        'cache-control': 'no-store',
      });
      await new Promise((resolve) => {
        res.write(payload.subarray(0, Math.max(1, Math.floor(payload.length / 2))), () => resolve());
      });
      await sleep(20);
      res.socket?.destroy();
      return undefined;
    }
    case 'truncated_json':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, '{"access_token": "ey');
    case 'empty':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, '');
    case 'html_login':
      ctx.status = 200;
      return writeRaw(ctx, 200, html, page('Sign in', `<form method="post" action="/login">
<input type="text" name="username"><input type="password" name="password">
<button type="submit">Sign in</button></form>`));
    case 'invalid_grant':
      ctx.status = 400;
      return writeRaw(ctx, 400, json, JSON.stringify({ error: 'invalid_grant', error_description: 'grant request is invalid (injected fault)' }));
    case 'invalid_client':
      ctx.status = 401;
      return writeRaw(ctx, 401, { ...json, 'www-authenticate': `Basic realm="${ISSUER}"` }, JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed (injected fault)' }));
    case 'unsupported_token_type':
      ctx.status = 400;
      return writeRaw(ctx, 400, json, JSON.stringify({ error: 'unsupported_token_type', error_description: 'the authorization server does not support the revocation of the presented token type (injected fault)' }));
    case 'no_access_token':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, JSON.stringify({ token_type: 'Bearer', expires_in: 3600 }));
    case 'not_jwt':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, JSON.stringify({ access_token: 'opaque-abc123', token_type: 'Bearer', expires_in: 3600 }));
    case 'expired_jwt':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, JSON.stringify({ access_token: await expiredJwtFor(ctx), token_type: 'Bearer', expires_in: 3600 }));
    case 'claims_jwt':
      ctx.status = 200;
      return writeRaw(ctx, 200, json, JSON.stringify({ access_token: await signRawPayload(f.payload), token_type: 'Bearer', expires_in: 3600 }));
    case 'echo': {
      const status = Number(f.status ?? 400);
      ctx.status = status;
      const error = f.error === undefined ? 'invalid_grant' : String(f.error);
      return writeRaw(ctx, status, json, JSON.stringify({ error, error_description: echoOf(ctx) }));
    }
    default:
      return next();
  }
});

// 4b. Deviations (--deviate NAME): answers of issuers that bend the RFCs.
provider.use(async (ctx, next) => {
  if (!DEVIATIONS.size || ctx.method !== 'POST') return next();
  const atToken = ctx.path === tokenPath();
  const atDevice = ctx.path === deviceAuthPath();
  if (!atToken && !atDevice) return next();
  const form = ctx.state.form ?? {};
  const jsonType = { 'content-type': 'application/json; charset=utf-8' };
  // strict-assertion-aud: a private_key_jwt assertion is accepted only when its aud is
  // exactly the URL of the endpoint being called (not the issuer, not the token
  // endpoint when calling another endpoint).
  if (DEVIATIONS.has('strict-assertion-aud') && typeof form.client_assertion === 'string') {
    const expected = `${ISSUER}${ctx.path}`;
    let aud;
    try {
      ({ aud } = jose.decodeJwt(form.client_assertion));
    } catch {
      aud = undefined;
    }
    const auds = [].concat(aud ?? []);
    if (auds.length !== 1 || auds[0] !== expected) {
      log(`deviation strict-assertion-aud: aud ${JSON.stringify(aud)} is not ${expected}`);
      ctx.status = 401;
      return writeRaw(ctx, 401, jsonType, JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }));
    }
  }
  const gt = form.grant_type;
  // cc-403-empty: a client_credentials request without a scope is refused with 403
  // and no body, as one with a wrong secret is (below).
  if (atToken && gt === GT.cc && DEVIATIONS.has('cc-403-empty') && !form.scope) {
    log('deviation cc-403-empty: client_credentials without scope');
    ctx.status = 403;
    return writeRaw(ctx, 403, {}, '');
  }
  await next();
  if (!atToken) return undefined;
  const body = ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) ? ctx.body : undefined;
  // refresh-400-empty: a bad, used or revoked refresh token gets 400 and no body
  // (no invalid_grant).
  if (gt === GT.refresh && DEVIATIONS.has('refresh-400-empty') && ctx.status === 400 && body?.error === 'invalid_grant') {
    log('deviation refresh-400-empty');
    return writeRaw(ctx, 400, {}, '');
  }
  if (gt === GT.cc && DEVIATIONS.has('cc-403-empty') && ctx.status >= 400) {
    log(`deviation cc-403-empty: ${body?.error ?? ctx.status}`);
    return writeRaw(ctx, 403, {}, '');
  }
  // scope-invalid: a non-standard error code for invalid_scope.
  if (DEVIATIONS.has('scope-invalid') && body?.error === 'invalid_scope') {
    log('deviation scope-invalid');
    ctx.body = { ...body, error: 'scope_invalid' };
  }
  // token-quirks: lower-case token_type and an iat in the token response.
  if (DEVIATIONS.has('token-quirks') && ctx.status === 200 && body?.access_token) {
    ctx.body = { ...body, token_type: 'bearer', iat: Math.floor(Date.now() / 1000) };
  }
  return undefined;
});

// 5. Device flow knobs: `interval` in the device authorization response and a
//    one-off `slow_down` from the token endpoint.
provider.use(async (ctx, next) => {
  if (ctx.path === tokenPath() && ctx.state.form?.grant_type === GT.device && device.slowDownOnce) {
    device.slowDownOnce = false;
    log('answering slow_down once (test control)');
    ctx.status = 400;
    ctx.set('cache-control', 'no-store');
    ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly and should back off at a reasonable rate' };
    return;
  }
  await next();
  if (ctx.path === deviceAuthPath() && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && device.interval !== null) {
    ctx.body = { ...ctx.body, interval: device.interval };
  }
  if (ctx.path === deviceAuthPath() && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && device.decorate.length) {
    // The user code padded far past any sane length; the URIs short enough to open.
    const body = { ...ctx.body };
    const d = new Set(device.decorate);
    if (d.has('user_code')) body.user_code = `${body.user_code}${echoOf(ctx)}`;
    if (d.has('verification_uri')) body.verification_uri = `${body.verification_uri}?${echoOf(ctx, 0)}`;
    if (d.has('verification_uri_complete')) {
      body.verification_uri_complete = `${body.verification_uri_complete}${echoOf(ctx, 0)}`;
    }
    ctx.body = body;
  }
  if (ctx.path === deviceAuthPath() && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && device.answer) {
    let text = JSON.stringify({ ...ctx.body, ...Object.fromEntries(Object.keys(device.answer).map((k) => [k, `@@${k}@@`])) });
    for (const [k, v] of Object.entries(device.answer)) text = text.replace(`"@@${k}@@"`, v);
    ctx.type = 'application/json';
    ctx.body = text;
  }
});

// 6. IAM/CILogon take `audience`; oidc-provider implements RFC 8707 `resource`.
//    Map `audience` form values to `resource` on the token and device
//    authorization endpoints, then hand the rewritten form to the provider.
//    Like IAM, a refresh (or device_code poll) may name an audience that was
//    not named when the grant was made: it is added to the grant first.
async function widenGrant(model, resource) {
  if (!model || model.consumed || !model.grantId || model.resourceIndicators.has(resource)) return;
  const grant = await provider.Grant.find(model.grantId);
  if (!grant) return;
  const scope = splitScope(model.scope).filter(isGrantable).join(' ');
  if (scope) {
    grant.addResourceScope(resource, scope);
    await grant.save();
  }
  const existing = model.resource === undefined ? [] : [].concat(model.resource);
  model.resource = [...existing, resource];
  await model.save();
  log(`audience ${resourceToAudience(resource)} added to grant ${model.grantId}`);
}

provider.use(async (ctx, next) => {
  const form = ctx.state.form;
  if (!form || (ctx.path !== tokenPath() && ctx.path !== deviceAuthPath())) return next();
  if (form.audience !== undefined) {
    const auds = [].concat(form.audience).filter((a) => typeof a === 'string' && a.trim());
    delete form.audience;
    if (auds.length) {
      const mapped = auds.map((a) => audienceToResource(a.trim()));
      const existing = form.resource === undefined ? [] : [].concat(form.resource);
      const all = uniq([...existing, ...mapped]);
      form.resource = all.length === 1 ? all[0] : all;
    }
  }
  if (ctx.path === tokenPath() && typeof form.resource === 'string') {
    try {
      if (form.grant_type === GT.refresh && typeof form.refresh_token === 'string') {
        await widenGrant(await provider.RefreshToken.find(form.refresh_token, { ignoreExpiration: true }), form.resource);
      } else if (form.grant_type === GT.device && typeof form.device_code === 'string') {
        const code = await provider.DeviceCode.find(form.device_code, { ignoreExpiration: true });
        if (code?.accountId) await widenGrant(code, form.resource);
      }
    } catch (err) {
      log('audience widening failed:', err);
    }
  }
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    for (const one of [].concat(v)) params.append(k, one);
  }
  // oidc-provider reads an already-consumed body from ctx.request.body (and
  // warns once on stderr that an upstream parser ran).
  ctx.request.body = params.toString();
  return next();
});

// ---------------------------------------------------------------------------

handler = provider.callback();
process.stdout.write(`${JSON.stringify({ issuer: ISSUER, port: PORT })}\n`);
// The harness may close its end of stdout after the ready line.
process.stdout.on('error', () => {});
log(`ready: ${ISSUER} access_ttl=${OPTS.accessTtl} refresh_ttl=${OPTS.refreshTtl} rotate=${OPTS.rotate} deviate=${[...DEVIATIONS].join(',') || 'none'} (${Math.round(process.uptime() * 1000)}ms after start)`);
