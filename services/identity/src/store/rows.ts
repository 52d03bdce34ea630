/** Row shapes and their mapping to contract messages (works for `pg` and PGlite alike). */
import { identityV1 } from '@hubbub/proto';

export interface UserRow {
  id: string | number | bigint;
  username: string;
  username_fold: string;
  display_name: string;
  email: string | null;
  bio: string;
  avatar: string;
  role: 'user' | 'sysop' | 'guest';
  is_bot: boolean;
  password_hash: string | null;
  ban_reason: string | null;
  ban_until: Date | null;
  ban_by: string | null;
  banned_at: Date | null;
  preferences: Record<string, string> | string | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  last_login_at: Date | null;
  last_login_address: string | null;
  last_login_protocol: string | null;
}

export interface SshKeyRow {
  id: string | number | bigint;
  user_id: string | number | bigint;
  algorithm: string;
  fingerprint: string;
  key_blob: Uint8Array;
  bits: number;
  comment: string;
  created_at: Date;
  last_used_at: Date | null;
}

export interface AppPasswordRow {
  id: string | number | bigint;
  user_id: string | number | bigint;
  name: string;
  scopes: string[] | string;
  secret_hash: string;
  created_at: Date;
  last_used_at: Date | null;
}

export interface CertRow {
  fingerprint: string;
  user_id: string | number | bigint;
  name: string;
  created_at: Date;
}

export interface E2EKeyRow {
  id: string | number | bigint;
  user_id: string | number | bigint;
  fingerprint: string;
  bundle: Uint8Array;
  ed25519: Uint8Array;
  x25519: Uint8Array;
  bundle_created_at: Date;
  published_at: Date;
  is_current: boolean;
  revoked_at: Date | null;
}

export interface AddressBanRow {
  cidr: string;
  reason: string;
  until: Date | null;
  banned_by: string;
  created_at: Date;
}

export const ROLE_TO_DB: Partial<Record<identityV1.Role, UserRow['role']>> = {
  [identityV1.Role.ROLE_USER]: 'user',
  [identityV1.Role.ROLE_SYSOP]: 'sysop',
  [identityV1.Role.ROLE_GUEST]: 'guest',
};

export function roleFromDb(r: string): identityV1.Role {
  switch (r) {
    case 'sysop':
      return identityV1.Role.ROLE_SYSOP;
    case 'guest':
      return identityV1.Role.ROLE_GUEST;
    default:
      return identityV1.Role.ROLE_USER;
  }
}

export const toBuf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
export const idStr = (v: string | number | bigint): string => String(v);

/** PostgreSQL text[] may arrive parsed (pg) or as a literal `{a,b}` (some drivers). */
export function textArray(v: string[] | string | null | undefined): string[] {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) return v;
  const inner = v.replace(/^\{|\}$/g, '');
  return inner === '' ? [] : inner.split(',').map((s) => s.replace(/^"|"$/g, ''));
}

export function isBanActive(u: Pick<UserRow, 'banned_at' | 'ban_until'>, nowMs: number): boolean {
  return u.banned_at !== null && (u.ban_until === null || u.ban_until.getTime() > nowMs);
}

export function toBan(u: UserRow, nowMs: number): identityV1.Ban | undefined {
  if (!isBanActive(u, nowMs)) return undefined;
  return {
    reason: u.ban_reason ?? '',
    until: u.ban_until ?? undefined,
    by: u.ban_by ?? '',
    createdAt: u.banned_at ?? undefined,
  };
}

export function toUser(u: UserRow, nowMs: number): identityV1.User {
  return {
    id: idStr(u.id),
    username: u.username,
    displayName: u.display_name,
    bio: u.bio,
    avatar: u.avatar,
    role: roleFromDb(u.role),
    isBot: u.is_bot,
    deleted: u.deleted_at !== null,
    ban: toBan(u, nowMs),
    createdAt: u.created_at,
    updatedAt: u.updated_at,
    deletedAt: u.deleted_at ?? undefined,
  };
}

export function toPrivate(u: UserRow): identityV1.PrivateProfile {
  return {
    email: u.email ?? '',
    lastLoginAt: u.last_login_at ?? undefined,
    lastLoginAddress: u.last_login_address ?? '',
    lastLoginProtocol: u.last_login_protocol ?? '',
  };
}

export function toSshKey(k: SshKeyRow): identityV1.SshKey {
  return {
    id: idStr(k.id),
    algorithm: k.algorithm,
    fingerprint: k.fingerprint,
    comment: k.comment,
    keyBlob: toBuf(k.key_blob),
    bits: k.bits,
    createdAt: k.created_at,
    lastUsedAt: k.last_used_at ?? undefined,
  };
}

export function toAppPassword(a: AppPasswordRow): identityV1.AppPassword {
  return {
    id: idStr(a.id),
    name: a.name,
    scopes: textArray(a.scopes),
    createdAt: a.created_at,
    lastUsedAt: a.last_used_at ?? undefined,
  };
}

export function toCert(c: CertRow): identityV1.ClientCertificate {
  return { fingerprint: c.fingerprint, name: c.name, createdAt: c.created_at };
}

export function toE2EKey(k: E2EKeyRow, u: UserRow, nowMs: number): identityV1.E2EKey {
  return {
    userId: idStr(k.user_id),
    username: u.username,
    bundle: toBuf(k.bundle),
    fingerprint: k.fingerprint,
    ed25519PublicKey: toBuf(k.ed25519),
    x25519PublicKey: toBuf(k.x25519),
    bundleCreatedAt: k.bundle_created_at,
    publishedAt: k.published_at,
    current: k.is_current,
    revoked: k.revoked_at !== null,
    revokedAt: k.revoked_at ?? undefined,
    accountBanned: isBanActive(u, nowMs) || u.deleted_at !== null,
  };
}

export function toAddressBan(b: AddressBanRow): identityV1.AddressBan {
  return {
    cidr: b.cidr,
    ban: { reason: b.reason, until: b.until ?? undefined, by: b.banned_by, createdAt: b.created_at },
  };
}

/** Unique-violation detection for pg and PGlite (SQLSTATE 23505), with the constraint name. */
export function uniqueViolation(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { code?: unknown; constraint?: unknown; detail?: unknown; message?: unknown };
  if (o.code !== '23505') return undefined;
  if (typeof o.constraint === 'string') return o.constraint;
  if (typeof o.detail === 'string') return o.detail;
  return typeof o.message === 'string' ? o.message : '';
}
