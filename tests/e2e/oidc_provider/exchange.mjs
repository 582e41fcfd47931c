// Token exchange on oidc-provider for the gateway's upstream credentials (docs/identity.md):
// RFC 8693 (token-exchange grant) and Entra ID-style on-behalf-of (jwt-bearer grant with
// requested_token_use=on_behalf_of), registered with oidc-provider's registerGrantType.
//
// The subject token must be a JWT this provider signed (verified against its own JWKS);
// the issued token is an RFC 9068 JWT for the requested resource, whose `sub` is the
// subject token's and whose `client_id` is the exchanging client.
//
// config.exchange maps a resource to how the provider behaves when asked for it, so tests
// can drive the hostile cases the gateway must survive:
//   ok (default)     a token for that resource, with the scopes asked for
//   other_audience   a token whose `aud` is another resource
//   broad_scope      every scope of the resource, whatever was asked
//   invalid_grant    an OAuth error whose description quotes the subject token
//   hang             no answer at all
//   huge             a 200 kB answer
//   no_expiry        no `expires_in`
// GET /test/counts answers how many times each resource was asked for, per grant, and how
// many introspection requests came (key "introspection ").

import { pathToFileURL } from 'node:url';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export default async function extend(provider, { issuer, config, errors, toolChain }) {
  const jose = await import(pathToFileURL(toolChain.resolve('jose')).href);
  const keys = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const behaviours = config.exchange ?? {};
  const resources = config.resources ?? {};
  const ttl = config.access_token_ttl ?? 3600;
  const counts = {};

  function count(grant, resource) {
    const key = `${grant} ${resource}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }

  async function subjectOf(token) {
    try {
      const { payload } = await jose.jwtVerify(token, keys, { issuer });
      return payload;
    } catch {
      throw new errors.InvalidGrant('subject token is not valid');
    }
  }

  async function issue(ctx, { subject, resource, scope, grant }) {
    const behaviour = behaviours[resource] ?? 'ok';
    count(grant, resource);
    if (behaviour === 'hang') {
      await new Promise(() => {});
    }
    if (behaviour === 'invalid_grant') {
      // Real IdPs quote what they were sent; the gateway must not pass this on.
      throw new errors.InvalidGrant(`cannot exchange ${ctx.oidc.params.subject_token ?? ctx.oidc.params.assertion}`);
    }
    const known = resources[resource];
    if (known === undefined) {
      throw new errors.InvalidTarget('unknown resource');
    }
    const allowed = new Set(Array.isArray(known) ? known : String(known).split(' '));
    const held = new Set(String(subject.scope ?? '').split(' '));
    const asked = scope ? scope.split(' ') : [];
    // RFC 8693 section 2.1: the issued token carries no more than the subject holds.
    if (asked.some((s) => !allowed.has(s) || !held.has(s))) {
      throw new errors.InvalidScope('scope exceeds the subject token', scope);
    }
    const granted = behaviour === 'broad_scope' ? [...allowed].join(' ') : asked.join(' ');
    const audience = behaviour === 'other_audience' ? 'https://elsewhere.example/mcp' : resource;
    const token = new provider.AccessToken({
      accountId: subject.sub,
      client: ctx.oidc.client,
      scope: granted || undefined,
      gty: grant,
    });
    token.resourceServer = {
      audience,
      scope: [...allowed].join(' '),
      accessTokenTTL: ttl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: config.alg ?? 'ES256' } },
      identifier: () => resource,
      get scopes() {
        return allowed;
      },
    };
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN,
      token_type: 'Bearer',
      ...(behaviour === 'no_expiry' ? {} : { expires_in: ttl }),
      ...(granted ? { scope: granted } : {}),
      ...(behaviour === 'huge' ? { padding: 'x'.repeat(200_000) } : {}),
    };
  }

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const { params } = ctx.oidc;
      if (params.subject_token_type !== ACCESS_TOKEN) {
        throw new errors.InvalidRequest('subject_token_type must be an access token');
      }
      const subject = await subjectOf(params.subject_token);
      await issue(ctx, { subject, resource: params.resource, scope: params.scope, grant: 'token-exchange' });
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'resource'],
  );

  provider.registerGrantType(
    JWT_BEARER,
    async (ctx) => {
      const { params } = ctx.oidc;
      if (params.requested_token_use !== 'on_behalf_of') {
        throw new errors.InvalidRequest('requested_token_use must be on_behalf_of');
      }
      const subject = await subjectOf(params.assertion);
      // Entra ID names the upstream in the scopes: "<resource>/.default" or "<resource>/<scope>".
      const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
      const resource = Object.keys(resources).find((r) => scopes.every((s) => s.startsWith(`${r}/`)));
      if (resource === undefined) {
        throw new errors.InvalidScope('scopes must all name one resource', params.scope);
      }
      const named = scopes.map((s) => s.slice(resource.length + 1)).filter((s) => s !== '.default');
      await issue(ctx, { subject, resource, scope: named.join(' '), grant: 'on-behalf-of' });
    },
    ['assertion', 'requested_token_use', 'scope'],
  );

  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/test/counts') {
      ctx.body = counts;
      return undefined;
    }
    if (ctx.method === 'POST' && ctx.path === '/token/introspection') {
      count('introspection', '');
    }
    return next();
  });
}
