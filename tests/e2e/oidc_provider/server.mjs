// A real third-party authorization server for end-to-end tests: panva's oidc-provider,
// configured from a JSON file so the Python fixture decides resources, keys and clients.
//
//   node server.mjs CONFIG.json        (or OIDC_PROVIDER_CONFIG=CONFIG.json node server.mjs)
//
// Config keys (all optional but `resources`):
//   port                  0 (default) lets the OS pick a free port: no race between a
//                         probe and the bind; the real issuer is printed on READY.
//   host                  "127.0.0.1"
//   issuer                default http://HOST:PORT (no trailing slash: `iss` is compared
//                         byte-for-byte, RFC 8414 section 3.3).
//   resources             { "<resource URL>": "scope1 scope2" } (a list of scopes works too)
//   alg                   "RS256" | "ES256" | "EdDSA" | "Ed25519"; one key per start-up.
//   clients               static clients, oidc-provider client metadata (snake_case).
//   auto_approve_account  the account the interaction endpoint logs in and consents as.
//   access_token_ttl      seconds, default 3600.
//   opaque_resources      resources whose access tokens are opaque (introspection tests).
//   extension             path of a module whose default export extends the provider
//                         (tests/e2e/oidc_provider/exchange.mjs: token exchange grants;
//                         idjag.mjs: ID-JAGs for Enterprise-Managed Authorization).
//   registration          false: no Dynamic Client Registration (an IdP like Entra ID),
//                         default true.
//
// Prints exactly one line `READY <issuer>` on stdout once it accepts connections.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// ESM resolves bare names from this file's folder, ignoring cwd and NODE_PATH; the
// package lives in the test tool chain's tests/node/node_modules.
const toolChain = createRequire(new URL('../../node/package.json', import.meta.url));
const { default: Provider, errors } = await import(
  pathToFileURL(toolChain.resolve('oidc-provider')).href
);

const configPath = process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG;
if (!configPath) {
  console.error('usage: node server.mjs CONFIG.json (or set OIDC_PROVIDER_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

const host = config.host ?? '127.0.0.1';
const alg = config.alg ?? 'ES256';
const account = config.auto_approve_account ?? 'alice';
const accessTokenTTL = config.access_token_ttl ?? 3600;
const opaqueResources = new Set(config.opaque_resources ?? []);
const resources = new Map(
  Object.entries(config.resources ?? {}).map(([url, scopes]) => [
    url,
    Array.isArray(scopes) ? scopes.join(' ') : String(scopes),
  ]),
);

const KEY_TYPES = {
  RS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
  // RFC 9864's fully-specified name for EdDSA over Ed25519 (joserfc warns on "EdDSA").
  Ed25519: ['ed25519', {}],
};

function signingJwk() {
  if (!(alg in KEY_TYPES)) {
    throw new Error(`alg must be one of ${Object.keys(KEY_TYPES).join(', ')}, got ${alg}`);
  }
  const [type, options] = KEY_TYPES[alg];
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  // A fresh kid per start-up: a verifier that caches keys across fixtures must re-fetch.
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg, use: 'sig' };
}

// Bind before building the provider: the issuer must name the real port.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, host, resolve);
});
const issuer = config.issuer ?? `http://${host}:${server.address().port}`;

// Every resource scope is a scope the provider supports: Dynamic Client Registration
// refuses a `scope` naming anything it does not list (the MCP SDK registers with the
// scope the gateway's challenge asked for).
const resourceScopes = [...new Set([...resources.values()].flatMap((s) => s.split(' ')))];

// The one signing key; an extension that issues JWTs of its own (idjag.mjs) signs with it too.
const signingKey = signingJwk();

const provider = new Provider(issuer, {
  scopes: ['openid', 'offline_access', ...resourceScopes],
  jwks: { keys: [signingKey] },
  // Random per run: the cookies only have to survive one test's redirect chain.
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clients: config.clients ?? [],
  // ID tokens too must be signed with the only key there is (the default is RS256).
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: alg,
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  // OAuth 2.1 drops the implicit grant; only the code flow is offered.
  responseTypes: ['code'],
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  // OAuth 2.1 / MCP: every client uses PKCE; oidc-provider v9 only implements S256.
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTokenTTL,
    ClientCredentials: accessTokenTTL,
  },
  // A client that registered the refresh_token grant gets a refresh token whether or
  // not it asked for offline_access (the default requires offline_access): MCP clients
  // register the grant and expect it to work. offline_access is still listed and
  // granted when asked for, and never reaches a resource's access token (that scope
  // is filtered to the resource's own scopes).
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Refresh tokens outlive the interaction's browser session: nothing logs out here.
  expiresWithSession: () => false,
  // Always rotate, so tests see the one-time-use behaviour of OAuth 2.1 section 4.3.1.
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: config.registration ?? true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The default policy, stated so oidc-provider does not warn: public clients may
      // introspect only their own tokens.
      allowedPolicy: (ctx, client, token) =>
        client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client.clientId,
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: no default (opaque token). Several resources and the
      // token request names none: hand the list back, so oidc-provider refuses with
      // invalid_target instead of silently picking one.
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      // A token request without `resource` gets the resource the grant was made for.
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const scope = resources.get(resource);
        if (scope === undefined) {
          throw new errors.InvalidTarget(`unknown resource ${resource}`);
        }
        return {
          audience: resource,
          accessTokenFormat: opaqueResources.has(resource) ? 'opaque' : 'jwt',
          accessTokenTTL,
          scope,
          jwt: { sign: { alg } },
        };
      },
    },
  },
});

// Headless interactions: approve every login and consent prompt as `account`, so a
// scripted client following redirects with a cookie jar completes the flow.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !/^\/interaction\/[^/]+$/.test(ctx.path)) {
    return next();
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const result = details.prompt.name === 'login'
    ? { login: { accountId: account } }
    : { consent: { grantId: await grantEverything(details) } };
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: true,
  }));
  return undefined;
});

async function grantEverything({ grantId, params, session, prompt: { details } }) {
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) {
    grant.addOIDCScope(details.missingOIDCScope.join(' '));
  }
  if (details.missingOIDCClaims) {
    grant.addOIDCClaims(details.missingOIDCClaims);
  }
  // Without this the resource's access token carries no scopes at all.
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

if (config.extension) {
  const extension = await import(pathToFileURL(config.extension).href);
  await extension.default(provider, { issuer, config, errors, toolChain, signingKey });
}

server.on('request', provider.callback());

function shutdown() {
  server.close();
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

process.stdout.write(`READY ${issuer}\n`);
