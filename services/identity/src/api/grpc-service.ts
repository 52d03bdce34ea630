/**
 * gRPC handlers of hubbub.identity.v1.IdentityService: thin (request → IdentityApp → response),
 * with one metric per call. Errors are AppErrors; @hubbub/grpc maps them to status codes.
 */
import { dbError } from '@hubbub/db';
import { AppError, codeName } from '@hubbub/errors';
import { implement, mapErrors, wrapHandlers } from '@hubbub/grpc';
import type { AsyncServiceImpl, GrpcServerOptions } from '@hubbub/grpc';
import { identityV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { Registry } from 'prom-client';
import { Histogram } from 'prom-client';
import type { IdentityApp } from '../app/identity';

type Def = typeof identityV1.IdentityServiceService;

const RPC_SECONDS = 'hubbub_identity_rpc_seconds';

/**
 * `hubbub_identity_rpc_seconds{method,code}`: time inside the app per call, transport excluded. One per registry
 * (the gRPC service and the NATS verify-token endpoint share it; VerifyToken counts both transports).
 */
export function rpcHistogram(registry: Registry): Histogram<'method' | 'code'> {
  const existing = registry.getSingleMetric(RPC_SECONDS);
  if (existing) return existing as Histogram<'method' | 'code'>;
  return new Histogram({
    name: RPC_SECONDS,
    help: 'identity RPC latency by method and result code (app time; VerifyToken over gRPC and NATS)',
    labelNames: ['method', 'code'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
}

export function identityService(
  app: IdentityApp,
  log: Logger,
  registry?: Registry,
): GrpcServerOptions['services'][number] {
  const hist = registry ? rpcHistogram(registry) : undefined;
  const raw: AsyncServiceImpl<Def> = {
    register: (r) => app.register(r),
    authenticate: (r) => app.authenticate(r),
    verifyPassword: (r) => app.verifyPassword(r),
    checkUsername: (r) => app.checkUsername(r),
    getUser: (r) => app.getUser(r),
    getUserByName: (r) => app.getUserByName(r),
    batchGetUsers: (r) => app.batchGetUsers(r),
    listUsers: (r) => app.listUsers(r),
    updateProfile: (r) => app.updateProfile(r),
    changePassword: (r) => app.changePassword(r),
    resetPassword: (r) => app.resetPassword(r),
    deleteAccount: (r) => app.deleteAccount(r),
    setRole: (r) => app.setRole(r),
    ban: (r) => app.ban(r),
    unban: (r) => app.unban(r),
    recordLogin: (r) => app.recordLogin(r),
    getPreferences: (r) => app.getPreferences(r),
    setPreferences: (r) => app.setPreferences(r),
    getGuestAccount: () => app.getGuestAccount(),
    banAddress: (r) => app.banAddress(r),
    unbanAddress: (r) => app.unbanAddress(r),
    checkAddressBan: (r) => app.checkAddressBan(r),
    clearLoginFailures: (r) => app.clearLoginFailures(r),
    listBans: () => app.listBans(),
    verifyToken: (r) => app.verifyToken(r),
    refreshToken: (r) => app.refreshToken(r),
    revokeToken: (r) => app.revokeToken(r),
    revokeAllTokens: (r) => app.revokeAllTokens(r),
    issueToken: (r) => app.issueToken(r),
    addSshKey: (r) => app.addSshKey(r),
    listSshKeys: (r) => app.listSshKeys(r),
    removeSshKey: (r) => app.removeSshKey(r),
    authenticateSshKey: (r) => app.authenticateSshKey(r),
    findSshKey: (r) => app.findSshKey(r),
    createAppPassword: (r) => app.createAppPassword(r),
    listAppPasswords: (r) => app.listAppPasswords(r),
    revokeAppPassword: (r) => app.revokeAppPassword(r),
    verifyAppPassword: (r) => app.verifyAppPassword(r),
    addClientCertificate: (r) => app.addClientCertificate(r),
    listClientCertificates: (r) => app.listClientCertificates(r),
    removeClientCertificate: (r) => app.removeClientCertificate(r),
    lookupByCertFingerprint: (r) => app.lookupByCertFingerprint(r),
    publishE2EKey: (r) => app.publishE2EKey(r),
    getE2EKey: (r) => app.getE2EKey(r),
    getE2EKeyHistory: (r) => app.getE2EKeyHistory(r),
    revokeE2EKey: (r) => app.revokeE2EKey(r),
  };
  // Database failures of every call: UNAVAILABLE when PostgreSQL is the problem (callers may retry), DEADLINE_EXCEEDED
  // QUERY_TIMEOUT past IDENTITY_STATEMENT_TIMEOUT_MS; they used to answer INTERNAL.
  let impl = mapErrors(raw, (e) => dbError(e) ?? e);
  if (hist) {
    impl = wrapHandlers(impl, (name, fn) => async (req, ctx) => {
      const end = hist.startTimer({ method: name });
      try {
        const r = await fn(req, ctx);
        end({ code: 'OK' });
        return r;
      } catch (e) {
        end({ code: codeName(AppError.from(e).code) });
        throw e;
      }
    });
  }
  return {
    name: 'hubbub.identity.v1.IdentityService',
    definition: identityV1.IdentityServiceService,
    implementation: implement(identityV1.IdentityServiceService, impl, log),
  };
}
