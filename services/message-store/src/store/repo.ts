/**
 * SQL of message-store. Ids travel as decimal strings (`::text` on the way out, `::bigint` on the way in),
 * so the code never depends on how a driver maps int8. Times are JS Dates (millisecond precision) chosen by
 * the application, so an event payload and its row always agree.
 */
import { messagesV1 } from '@hubbub/proto';
import { UNIQUE_VIOLATION, pgCode } from './sql';
import type { Queryable, Sql } from './sql';
import { FTS_VECTOR } from './migrations';
import { snowflakeMs } from '../app/snowflake';

type Message = messagesV1.Message;
type Channel = messagesV1.Channel;
type Attachments = messagesV1.Attachments;

export interface ChannelRow {
  readonly id: string;
  readonly kind: messagesV1.ChannelKind;
  readonly slug: string;
  readonly title: string;
  readonly info: string;
  readonly visibility: messagesV1.Visibility;
  readonly ownerId: string;
  readonly allowGuests: boolean;
  readonly archived: boolean;
  readonly createdAt: Date;
  readonly changedAt: Date;
}

export interface OutboxRow {
  readonly seq: string;
  readonly subject: string;
  readonly payload: string;
}

/**
 * An outbox row as stored. Rows of a batch of posts carry `message_ids` (events rebuilt from the messages
 * when swept); other rows carry their `subject` and `payload` (or, from migration 0002, a null payload and
 * the message id in `ref`).
 */
export interface StoredOutboxRow {
  readonly seq: string;
  readonly subject: string;
  readonly payload: string | null;
  readonly ref: string;
  readonly message_ids: string[] | null;
}

export interface OutboxEntry {
  readonly subject: string;
  readonly payload: string;
  readonly ref: string;
}

/** The advisory lock key of outbox sweeps and drains (each service has its own database: any constant). */
const OUTBOX_LOCK = '7527030527235325953'; // 0x687562627562_0001: "hubbub", 1

const CHANNEL_COLS = `id::text AS id, kind, slug, title, info, visibility, owner_id, allow_guests, archived, created_at, changed_at`;

export const MESSAGE_COLS = `id::text AS id, channel_id::text AS channel_id, author_id, author_name, author_kind, door, text,
  kind, subject, tags, coalesce(reply_to_id::text, '') AS reply_to_id, recipient_id, is_private, attachments,
  created_at, changed_at, edited, deleted, coalesce(client_key, '') AS client_key`;

const ONELINER_COLS = `id::text AS id, author_id, author_name, author_kind, door, text, created_at, coalesce(client_key, '') AS client_key`;

type Row = Record<string, unknown>;

/** A nullable text column as a string. */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return v.toString();
  return '';
}

function toDate(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

export function channelFromRow(r: Row): ChannelRow {
  return {
    id: String(r['id']),
    kind: Number(r['kind']),
    slug: String(r['slug']),
    title: String(r['title']),
    info: String(r['info']),
    visibility: Number(r['visibility']),
    ownerId: String(r['owner_id']),
    allowGuests: Boolean(r['allow_guests']),
    archived: Boolean(r['archived']),
    createdAt: toDate(r['created_at']),
    changedAt: toDate(r['changed_at']),
  };
}

export function channelToProto(
  c: ChannelRow,
  memberIds: readonly string[] = [],
  stats?: messagesV1.ChannelStats,
): Channel {
  return {
    id: c.id,
    kind: c.kind,
    slug: c.slug,
    title: c.title,
    info: c.info,
    visibility: c.visibility,
    ownerId: c.ownerId,
    allowGuests: c.allowGuests,
    archived: c.archived,
    memberIds: [...memberIds],
    createdAt: c.createdAt,
    changedAt: c.changedAt,
    stats,
  };
}

function attachmentsFromJson(v: unknown): Attachments | undefined {
  if (v === null || v === undefined) return undefined;
  const o = (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, unknown>;
  const a: Attachments = {};
  for (const k of ['filePicture', 'fileVideo', 'fileAudio', 'fileDocument', 'emoji'] as const) {
    const x = o[k];
    if (typeof x === 'string') a[k] = x;
  }
  return a;
}

function attachmentsToObject(a: Attachments | undefined): Record<string, string> | null {
  if (!a) return null;
  const o: Record<string, string> = {};
  let n = 0;
  for (const k of ['filePicture', 'fileVideo', 'fileAudio', 'fileDocument', 'emoji'] as const) {
    const x = a[k];
    if (x !== undefined) {
      o[k] = x;
      n++;
    }
  }
  return n === 0 ? null : o;
}

export function attachmentsToJson(a: Attachments | undefined): string | null {
  const o = attachmentsToObject(a);
  return o === null ? null : JSON.stringify(o);
}

export function messageFromRow(r: Row): Message {
  const tags = r['tags'];
  return {
    id: String(r['id']),
    channelId: String(r['channel_id']),
    authorId: String(r['author_id']),
    authorName: String(r['author_name']),
    authorKind: Number(r['author_kind']),
    door: String(r['door']),
    text: String(r['text']),
    kind: Number(r['kind']),
    subject: String(r['subject']),
    tags: Array.isArray(tags) ? tags.map(String) : [],
    replyToId: text(r['reply_to_id']),
    recipientId: String(r['recipient_id']),
    isPrivate: Boolean(r['is_private']),
    attachments: attachmentsFromJson(r['attachments']),
    createdAt: toDate(r['created_at']),
    changedAt: toDate(r['changed_at']),
    edited: Boolean(r['edited']),
    deleted: Boolean(r['deleted']),
    clientKey: text(r['client_key']),
  };
}

export function onelinerFromRow(r: Row): messagesV1.Oneliner {
  return {
    id: String(r['id']),
    authorId: String(r['author_id']),
    authorName: String(r['author_name']),
    authorKind: Number(r['author_kind']),
    door: String(r['door']),
    text: String(r['text']),
    createdAt: toDate(r['created_at']),
    clientKey: text(r['client_key']),
  };
}

/**
 * A batch of posts (ids assigned) as the JSON parameter of the batch INSERT: one-letter keys, and only the fields
 * that differ from the columns' defaults (empty subject, recipient and tags, no reply, not private, no files,
 * created at the id's millisecond). Every byte is written to PostgreSQL's socket and parsed there: this is about
 * half of the long form's size.
 */
export function postRowsJson(posts: readonly Message[]): string {
  const rows = new Array<Record<string, unknown>>(posts.length);
  for (let x = 0; x < posts.length; x++) {
    const m = posts[x]!;
    const o: Record<string, unknown> = {
      i: m.id,
      c: m.channelId,
      a: m.authorId,
      n: m.authorName,
      ak: m.authorKind,
      d: m.door,
      t: m.text,
      k: m.kind,
    };
    if (m.clientKey !== '') o['ck'] = m.clientKey;
    if (m.subject !== '') o['sj'] = m.subject;
    if (m.tags.length > 0) o['g'] = m.tags;
    if (m.replyToId !== '') o['rt'] = m.replyToId;
    if (m.recipientId !== '') o['ri'] = m.recipientId;
    if (m.isPrivate) o['p'] = true;
    const f = attachmentsToObject(m.attachments);
    if (f !== null) o['f'] = f;
    const ms = m.createdAt!.getTime();
    if (ms !== snowflakeMs(m.id)) o['at'] = m.createdAt!.toISOString();
    rows[x] = o;
  }
  return JSON.stringify(rows);
}

/**
 * A channel's next change time: the given one, or a millisecond after the stored one when that is not earlier (two
 * changes in one millisecond, or replicas whose clocks differ). Change times of a channel strictly increase, in the
 * order the changes commit (the UPDATE holds the row): ws-messenger ignores a channel event older than what it holds.
 */
const NEXT_CHANGE = (param: string): string =>
  `GREATEST(${param}::timestamptz, channels.changed_at + interval '1 millisecond')`;

// The batch travels as ONE json parameter (parsed by PostgreSQL in C) instead of a text array per column:
// cheaper than escaping every element of 17 array literals in JS. `skipStoredKeys` adds ON CONFLICT DO NOTHING
// on the idempotency index; without it the insert is a plain one (no speculative insertion: about 13% more rows/s
// here) and fails as a whole with unique_violation when a client key is already stored. The posts' outbox row
// stores no payload: the sweep rebuilds posted events from the message rows, which keeps the INSERT (and its WAL)
// small.
const insertPostsSql = (skipStoredKeys: boolean): string => `
WITH src AS (
  -- Short keys, defaults left out, the time taken from the id unless given: postRowsJson.
  SELECT i, c, a, n, ak, d, t, k, coalesce(sj, '') AS sj, coalesce(g, '{}') AS g, rt, coalesce(ri, '') AS ri,
    coalesce(p, false) AS p, f, coalesce(at, timestamptz 'epoch' + (i >> 19) * interval '1 millisecond') AS at, ck
  FROM json_to_recordset($1::json)
  AS r(i bigint, c bigint, a text, n text, ak smallint, d text, t text, k smallint, sj text, g text[], rt bigint,
    ri text, p boolean, f jsonb, at timestamptz, ck text)
),
ins AS (
  INSERT INTO messages (id, channel_id, author_id, author_name, author_kind, door, text, kind, subject, tags,
    reply_to_id, recipient_id, is_private, attachments, created_at, changed_at, client_key)
  SELECT i, c, a, n, ak, d, t, k, sj, g, rt, ri, p, f, at, at, ck
  FROM src ORDER BY i
  ${skipStoredKeys ? 'ON CONFLICT (author_id, client_key) WHERE client_key IS NOT NULL DO NOTHING' : ''}
  RETURNING id
),
ob AS (
  INSERT INTO outbox (subject, payload, ref, message_ids)
  SELECT '', NULL, '', array_agg(id ORDER BY id) FROM ins HAVING count(*) > 0
  RETURNING seq, message_ids
),
mem AS (
  INSERT INTO channel_members (channel_id, user_id)
  SELECT * FROM unnest($2::bigint[], $3::text[])
  ON CONFLICT DO NOTHING
  RETURNING channel_id, user_id
),
ch AS (
  UPDATE channels SET changed_at = ${NEXT_CHANGE('$4')} WHERE id IN (SELECT channel_id FROM mem)
  RETURNING id, changed_at
),
chob AS (
  -- One event per channel that gained a member (ch has one row per such channel), carrying the change time
  -- stored (NEXT_CHANGE may have moved it past the batch's).
  INSERT INTO outbox (subject, payload, ref)
  SELECT e.subject,
    jsonb_set(e.payload::jsonb, '{channel,changedAt}',
      to_jsonb(to_char(ch.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text,
    e.channel_id::text
  FROM unnest($5::bigint[], $6::text[], $7::text[]) AS e(channel_id, subject, payload)
  JOIN ch ON ch.id = e.channel_id
  RETURNING seq, subject, payload
)
SELECT ob.seq::text AS seq, ${skipStoredKeys ? 'ob.message_ids::text[]' : 'NULL::text[]'} AS ids,
  (SELECT json_agg(json_build_object('seq', chob.seq::text, 'subject', chob.subject, 'payload', chob.payload))
   FROM chob) AS joined
FROM (SELECT 1) one LEFT JOIN ob ON true`;
const INSERT_NEW_POSTS_SQL = insertPostsSql(false);
const INSERT_POSTS_SQL = insertPostsSql(true);

export class Repo {
  /** Batches that met an already stored client key and went again with ON CONFLICT DO NOTHING (insertPosts). */
  storedKeyRetries = 0;

  constructor(readonly sql: Sql) {}

  // ---- channels

  async channelById(id: string, q: Queryable = this.sql): Promise<ChannelRow | undefined> {
    if (!/^\d{1,19}$/.test(id)) return undefined;
    const rows = await q.query(`SELECT ${CHANNEL_COLS} FROM channels WHERE id = $1::bigint`, [id], 'ms_channel_by_id');
    return rows[0] ? channelFromRow(rows[0]) : undefined;
  }

  async channelBySlug(slug: string): Promise<ChannelRow | undefined> {
    const rows = await this.sql.query(`SELECT ${CHANNEL_COLS} FROM channels WHERE slug = $1`, [slug]);
    return rows[0] ? channelFromRow(rows[0]) : undefined;
  }

  /** The channels with these slugs (any order; unknown slugs are simply absent). */
  async channelsBySlugs(slugs: readonly string[]): Promise<ChannelRow[]> {
    if (slugs.length === 0) return [];
    const rows = await this.sql.query(`SELECT ${CHANNEL_COLS} FROM channels WHERE slug = ANY($1::text[])`, [slugs]);
    return rows.map(channelFromRow);
  }

  async channelByDirectKey(key: string): Promise<ChannelRow | undefined> {
    const rows = await this.sql.query(`SELECT ${CHANNEL_COLS} FROM channels WHERE direct_key = $1`, [key]);
    return rows[0] ? channelFromRow(rows[0]) : undefined;
  }

  async members(channelId: string, q: Queryable = this.sql): Promise<string[]> {
    const rows = await q.query<{ user_id: string }>(
      `SELECT user_id FROM channel_members WHERE channel_id = $1::bigint ORDER BY seq`,
      [channelId],
      'ms_members',
    );
    return rows.map((r) => r.user_id);
  }

  async membersOf(channelIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(channelIds.map((id) => [id, []]));
    if (channelIds.length === 0) return out;
    const rows = await this.sql.query<{ channel_id: string; user_id: string }>(
      `SELECT channel_id::text AS channel_id, user_id FROM channel_members WHERE channel_id = ANY($1::bigint[]) ORDER BY seq`,
      [channelIds],
    );
    for (const r of rows) out.get(r.channel_id)?.push(r.user_id);
    return out;
  }

  async insertChannel(
    q: Queryable,
    c: {
      kind: number;
      slug: string;
      title: string;
      info: string;
      visibility: number;
      ownerId: string;
      allowGuests: boolean;
      directKey: string | null;
      at: Date;
    },
  ): Promise<ChannelRow> {
    const rows = await q.query(
      `WITH nid AS (SELECT nextval(pg_get_serial_sequence('channels', 'id')) AS id)
       INSERT INTO channels (id, kind, slug, title, info, visibility, owner_id, allow_guests, direct_key, created_at, changed_at)
       SELECT nid.id, $1, CASE WHEN $2 = '' THEN 'c' || nid.id::text ELSE $2 END, $3, $4, $5, $6, $7, $8,
         $9::timestamptz, $9::timestamptz
       FROM nid RETURNING ${CHANNEL_COLS}`,
      [c.kind, c.slug, c.title, c.info, c.visibility, c.ownerId, c.allowGuests, c.directKey, c.at.toISOString()],
    );
    return channelFromRow(rows[0]!);
  }

  async addMembers(q: Queryable, channelId: string, userIds: readonly string[]): Promise<number> {
    if (userIds.length === 0) return 0;
    // unnest WITH ORDINALITY keeps the given order in `seq`.
    const rows = await q.query(
      `INSERT INTO channel_members (channel_id, user_id)
       SELECT $1::bigint, u FROM unnest($2::text[]) WITH ORDINALITY AS t(u, n) ORDER BY n
       ON CONFLICT DO NOTHING RETURNING user_id`,
      [channelId, userIds],
    );
    return rows.length;
  }

  async removeMember(q: Queryable, channelId: string, userId: string): Promise<number> {
    const rows = await q.query(
      `DELETE FROM channel_members WHERE channel_id = $1::bigint AND user_id = $2 RETURNING user_id`,
      [channelId, userId],
    );
    return rows.length;
  }

  async updateChannel(
    q: Queryable,
    id: string,
    f: { slug?: string; title?: string; info?: string; allowGuests?: boolean; archived?: boolean; at: Date },
  ): Promise<ChannelRow | undefined> {
    const rows = await q.query(
      `UPDATE channels SET slug = coalesce($2, slug), title = coalesce($3, title), info = coalesce($4, info),
         allow_guests = coalesce($5, allow_guests), archived = coalesce($6, archived), changed_at = ${NEXT_CHANGE('$7')}
       WHERE id = $1::bigint RETURNING ${CHANNEL_COLS}`,
      [
        id,
        f.slug ?? null,
        f.title ?? null,
        f.info ?? null,
        f.allowGuests ?? null,
        f.archived ?? null,
        f.at.toISOString(),
      ],
    );
    return rows[0] ? channelFromRow(rows[0]) : undefined;
  }

  async touchChannel(q: Queryable, id: string, at: Date): Promise<ChannelRow | undefined> {
    const rows = await q.query(
      `UPDATE channels SET changed_at = ${NEXT_CHANGE('$2')} WHERE id = $1::bigint RETURNING ${CHANNEL_COLS}`,
      [id, at.toISOString()],
    );
    return rows[0] ? channelFromRow(rows[0]) : undefined;
  }

  /**
   * Channels visible to `userId` (public ones, memberships; every channel when `all`), ascending id.
   * `userId` undefined = public only.
   */
  async listChannels(f: {
    userId: string | undefined;
    all: boolean;
    kind: number;
    visibility: number;
    changedSince: Date | undefined;
    includeArchived: boolean;
    memberOnly: boolean;
  }): Promise<ChannelRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    const memberOf = (u: string): string => `id IN (SELECT channel_id FROM channel_members WHERE user_id = ${p(u)})`;
    if (f.memberOnly) where.push(f.userId === undefined ? 'false' : memberOf(f.userId));
    else if (!f.all) {
      const pub = `visibility = ${messagesV1.Visibility.VISIBILITY_PUBLIC}`;
      where.push(f.userId === undefined ? pub : `(${pub} OR ${memberOf(f.userId)})`);
    }
    if (f.kind) where.push(`kind = ${p(f.kind)}`);
    if (f.visibility) where.push(`visibility = ${p(f.visibility)}`);
    if (f.changedSince) where.push(`changed_at >= ${p(f.changedSince.toISOString())}::timestamptz`);
    if (!f.includeArchived) where.push('NOT archived');
    const rows = await this.sql.query(
      `SELECT ${CHANNEL_COLS} FROM channels ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id`,
      params,
    );
    return rows.map(channelFromRow);
  }

  async channelStats(
    channelIds: readonly string[],
    userId: string | undefined,
    seesPrivate: boolean,
  ): Promise<Map<string, messagesV1.ChannelStats>> {
    const out = new Map<string, messagesV1.ChannelStats>();
    for (const id of channelIds) out.set(id, { total: '0', unread: '0', lastMessageId: '', lastMessageAt: undefined });
    if (channelIds.length === 0) return out;
    const rows = await this.sql.query<{
      channel_id: string;
      total: string;
      unread: string;
      last_id: string | null;
      last_at: Date | null;
    }>(
      `SELECT m.channel_id::text AS channel_id, count(*)::text AS total,
         count(*) FILTER (WHERE m.id > coalesce(r.last_read_id, 0))::text AS unread,
         max(m.id)::text AS last_id, max(m.created_at) AS last_at
       FROM messages m
       LEFT JOIN read_marks r ON r.channel_id = m.channel_id AND r.user_id = $2
       WHERE m.channel_id = ANY($1::bigint[]) AND NOT m.deleted
         AND ($3 OR NOT m.is_private OR m.author_id = $2 OR m.recipient_id = $2)
       GROUP BY m.channel_id, r.last_read_id`,
      [channelIds, userId ?? '', seesPrivate],
    );
    for (const r of rows) {
      out.set(r.channel_id, {
        total: r.total,
        unread: r.unread,
        lastMessageId: r.last_id ?? '',
        lastMessageAt: r.last_at ? toDate(r.last_at) : undefined,
      });
    }
    return out;
  }

  async markRead(channelId: string, userId: string, messageId: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO read_marks (channel_id, user_id, last_read_id) VALUES ($1::bigint, $2, $3::bigint)
       ON CONFLICT (channel_id, user_id) DO UPDATE SET last_read_id = greatest(read_marks.last_read_id, EXCLUDED.last_read_id)`,
      [channelId, userId, messageId],
    );
  }

  // ---- outbox

  async insertOutbox(q: Queryable, entries: readonly OutboxEntry[]): Promise<OutboxRow[]> {
    if (entries.length === 0) return [];
    const rows = await q.query<{ seq: string; ref: string }>(
      `INSERT INTO outbox (subject, payload, ref)
       SELECT s, p, r FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(s, p, r, n) ORDER BY n
       RETURNING seq::text AS seq, ref`,
      [entries.map((e) => e.subject), entries.map((e) => e.payload), entries.map((e) => e.ref)],
    );
    // Identity values follow insertion order, which follows ORDER BY n.
    const seqs = rows.map((r) => r.seq).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    return seqs.map((seq, i) => ({ seq, subject: entries[i]!.subject, payload: entries[i]!.payload }));
  }

  async deleteOutbox(seqs: readonly string[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.sql.lazy.query(`DELETE FROM outbox WHERE seq = ANY($1::bigint[])`, [seqs]);
  }

  /**
   * Takes the outbox lock for the rest of this transaction, or returns false when another sweep or drain (this
   * replica's or another's) holds it: one chunk at a time publishes from the outbox, so chunks never interleave.
   */
  async tryLockOutbox(q: Queryable): Promise<boolean> {
    const [r] = await q.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock($1::bigint) AS ok`, [OUTBOX_LOCK]);
    return r?.ok === true;
  }

  /**
   * The oldest outbox rows older than `olderThanMs` (all when 0) and not in `exclude`, in seq order, locked for this
   * transaction: at most `rows` rows, and only those that start within `events` events (a batch row counts one per
   * message; the first row always), so a chunk never carries more than about that many events.
   */
  async lockOutbox(
    q: Queryable,
    f: { olderThanMs: number; rows: number; events: number; exclude: readonly string[] },
  ): Promise<StoredOutboxRow[]> {
    return q.query<StoredOutboxRow>(
      `WITH first AS (
         SELECT seq, message_ids FROM outbox
         WHERE created_at <= now() - ($1::int * interval '1 millisecond') AND seq <> ALL($4::bigint[])
         ORDER BY seq LIMIT $2
       ),
       c AS (
         -- Counted over the first rows only: a long outbox (after an outage) is never scanned whole per chunk.
         SELECT seq, sum(coalesce(cardinality(message_ids), 1)) OVER (ORDER BY seq)
           - coalesce(cardinality(message_ids), 1) AS before
         FROM first
       )
       SELECT o.seq::text AS seq, o.subject, o.payload, o.ref, o.message_ids::text[] AS message_ids
       FROM outbox o JOIN c ON c.seq = o.seq
       WHERE c.before < $3
       ORDER BY o.seq FOR UPDATE OF o SKIP LOCKED`,
      [f.olderThanMs, f.rows, f.events, f.exclude],
    );
  }

  /** The outbox rows with these seqs (those still there, any order), locked for this transaction. */
  async lockOutboxSeqs(q: Queryable, seqs: readonly string[]): Promise<StoredOutboxRow[]> {
    if (seqs.length === 0) return [];
    return q.query<StoredOutboxRow>(
      `SELECT seq::text AS seq, subject, payload, ref, message_ids::text[] AS message_ids FROM outbox
       WHERE seq = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED`,
      [seqs],
    );
  }

  async deleteOutboxIn(q: Queryable, seqs: readonly string[]): Promise<void> {
    if (seqs.length === 0) return;
    await q.query(`DELETE FROM outbox WHERE seq = ANY($1::bigint[])`, [seqs]);
  }

  // ---- messages

  /**
   * One statement (its own transaction): the posts, their ONE outbox row, the memberships of posters who joined by
   * posting and, for each channel that gained a member, its `channel.updated` outbox row (`joinEvents`, built by
   * the caller; the statement sets the change time it stored). Posts whose (author, client_key) is already stored are skipped. Returns the posts' outbox seq
   * (undefined when nothing was inserted), the ids inserted (not duplicates) and the channel outbox rows written.
   *
   * Stored keys are rare (a client's retry), so the plain insert goes first; only when it fails on the idempotency
   * index (nothing of it was committed) does the same batch go again with ON CONFLICT DO NOTHING.
   */
  async insertPosts(
    posts: readonly Message[],
    joins: readonly { channelId: string; userId: string }[],
    joinEvents: readonly { channelId: string; subject: string; payload: string }[],
    at: Date,
  ): Promise<{ seq: string | undefined; inserted: Set<string>; joined: OutboxRow[] }> {
    const params = [
      postRowsJson(posts),
      joins.map((j) => j.channelId),
      joins.map((j) => j.userId),
      at.toISOString(),
      joinEvents.map((e) => e.channelId),
      joinEvents.map((e) => e.subject),
      joinEvents.map((e) => e.payload),
    ];
    type Row = { seq: string | null; ids: string[] | null; joined: OutboxRow[] | null };
    let rows: Row[];
    let all = true;
    try {
      rows = await this.sql.posts.query<Row>(INSERT_NEW_POSTS_SQL, params, 'ms_insert_new_posts');
    } catch (e) {
      if (pgCode(e) !== UNIQUE_VIOLATION) throw e;
      this.storedKeyRetries++;
      all = false;
      rows = await this.sql.posts.query<Row>(INSERT_POSTS_SQL, params, 'ms_insert_posts_skip_stored');
    }
    const r = rows[0];
    // Without ON CONFLICT a statement that succeeded inserted every row: the ids are not sent back to be parsed.
    const inserted = all ? new Set(posts.map((m) => m.id)) : new Set(r?.ids ?? []);
    return { seq: r?.seq ?? undefined, inserted, joined: r?.joined ?? [] };
  }

  async messagesByClientKeys(keys: readonly { authorId: string; clientKey: string }[]): Promise<Message[]> {
    if (keys.length === 0) return [];
    const rows = await this.sql.query(
      `SELECT ${MESSAGE_COLS} FROM messages
       WHERE (author_id, client_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [keys.map((k) => k.authorId), keys.map((k) => k.clientKey)],
    );
    return rows.map(messageFromRow);
  }

  async messagesByIds(ids: readonly string[], q: Queryable = this.sql): Promise<Message[]> {
    if (ids.length === 0) return [];
    const rows = await q.query(`SELECT ${MESSAGE_COLS} FROM messages WHERE id = ANY($1::bigint[])`, [ids]);
    return rows.map(messageFromRow);
  }

  async channelsByIds(ids: readonly string[], q: Queryable = this.sql): Promise<ChannelRow[]> {
    if (ids.length === 0) return [];
    const rows = await q.query(`SELECT ${CHANNEL_COLS} FROM channels WHERE id = ANY($1::bigint[])`, [ids]);
    return rows.map(channelFromRow);
  }

  async messageById(id: string, q: Queryable = this.sql): Promise<Message | undefined> {
    if (!/^\d{1,19}$/.test(id)) return undefined;
    const rows = await q.query(`SELECT ${MESSAGE_COLS} FROM messages WHERE id = $1::bigint`, [id], 'ms_message_by_id');
    return rows[0] ? messageFromRow(rows[0]) : undefined;
  }

  /** Writes the new state of a message if it has not changed since `prevChangedAt`, with its outbox row. */
  async updateMessage(m: Message, prevChangedAt: Date, ev: OutboxEntry): Promise<OutboxRow | undefined> {
    const rows = await this.sql.query<{ seq: string }>(
      `WITH u AS (
         UPDATE messages SET text = $2, subject = $3, tags = $4::text[], attachments = $5::jsonb,
           changed_at = $6::timestamptz, edited = $7, deleted = $8
         WHERE id = $1::bigint AND changed_at = $9::timestamptz RETURNING id
       )
       INSERT INTO outbox (subject, payload, ref) SELECT $10, $11, $12 FROM u RETURNING seq::text AS seq`,
      [
        m.id,
        m.text,
        m.subject,
        m.tags,
        attachmentsToJson(m.attachments),
        m.changedAt!.toISOString(),
        m.edited,
        m.deleted,
        prevChangedAt.toISOString(),
        ev.subject,
        ev.payload,
        ev.ref,
      ],
    );
    return rows[0] ? { seq: rows[0].seq, subject: ev.subject, payload: ev.payload } : undefined;
  }

  async listMessages(f: {
    channelId: string;
    before: string | undefined;
    after: string | undefined;
    limit: number;
    includeDeleted: boolean;
    tags: readonly string[];
    mailbox: boolean;
    userId: string;
    seesPrivate: boolean;
  }): Promise<{ messages: Message[]; more: boolean }> {
    const params: unknown[] = [f.channelId];
    const p = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    const where = ['channel_id = $1::bigint'];
    if (f.before) where.push(`id < ${p(f.before)}::bigint`);
    if (f.after) where.push(`id > ${p(f.after)}::bigint`);
    if (!f.includeDeleted) where.push('NOT deleted');
    if (f.tags.length > 0) where.push(`tags && ${p(f.tags)}::text[]`);
    if (f.mailbox) where.push(`is_private AND (author_id = ${p(f.userId)} OR recipient_id = $${params.length})`);
    else if (!f.seesPrivate)
      where.push(`(NOT is_private OR author_id = ${p(f.userId)} OR recipient_id = $${params.length})`);
    const oldestFirst = f.after !== undefined && f.before === undefined;
    const rows = await this.sql.query(
      `SELECT ${MESSAGE_COLS} FROM messages WHERE ${where.join(' AND ')}
       ORDER BY id ${oldestFirst ? 'ASC' : 'DESC'} LIMIT ${f.limit + 1}`,
      params,
    );
    const more = rows.length > f.limit;
    const page = rows.slice(0, f.limit).map(messageFromRow);
    if (!oldestFirst) page.reverse();
    return { messages: page, more };
  }

  async sliceMessages(f: {
    channelId: string;
    createdSince: Date | undefined;
    start: number | undefined;
    limit: number;
    userId: string;
    seesPrivate: boolean;
  }): Promise<{ total: number; start: number; messages: Message[] }> {
    const where = `channel_id = $1::bigint AND created_at >= $2::timestamptz
      AND ($3 OR NOT is_private OR author_id = $4 OR recipient_id = $4)`;
    const params = [f.channelId, (f.createdSince ?? new Date(0)).toISOString(), f.seesPrivate, f.userId];
    const [c] = await this.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM messages WHERE ${where}`, params);
    const total = Number(c?.n ?? 0);
    const start = f.start ?? Math.max(0, total - f.limit);
    if (start >= total) return { total, start, messages: [] };
    const rows = await this.sql.query(
      `SELECT ${MESSAGE_COLS} FROM messages WHERE ${where} ORDER BY id OFFSET ${start} LIMIT ${f.limit}`,
      params,
    );
    return { total, start, messages: rows.map(messageFromRow) };
  }

  async listChanges(f: {
    channelIds: readonly string[];
    since: Date;
    afterChangedAt: Date | undefined;
    afterId: string | undefined;
    limit: number;
    userId: string;
    seesPrivate: boolean;
  }): Promise<{ messages: Message[]; more: boolean }> {
    if (f.channelIds.length === 0) return { messages: [], more: false };
    const params: unknown[] = [f.channelIds, f.since.toISOString(), f.seesPrivate, f.userId];
    let cursor = '';
    if (f.afterChangedAt) {
      params.push(f.afterChangedAt.toISOString(), f.afterId && /^\d+$/.test(f.afterId) ? f.afterId : '0');
      cursor = `AND (changed_at, id) > ($5::timestamptz, $6::bigint)`;
    }
    const rows = await this.sql.query(
      `SELECT ${MESSAGE_COLS} FROM messages
       WHERE channel_id = ANY($1::bigint[]) AND changed_at >= $2::timestamptz ${cursor}
         AND ($3 OR NOT is_private OR author_id = $4 OR recipient_id = $4)
       ORDER BY changed_at, id LIMIT ${f.limit + 1}`,
      params,
    );
    return { messages: rows.slice(0, f.limit).map(messageFromRow), more: rows.length > f.limit };
  }

  async searchMessages(f: {
    channelIds: readonly string[];
    text: string;
    from: readonly string[];
    tags: readonly string[];
    before: string | undefined;
    limit: number;
    mailbox: boolean;
    userId: string;
    seesPrivate: boolean;
  }): Promise<{ messages: Message[]; more: boolean }> {
    if (f.channelIds.length === 0) return { messages: [], more: false };
    const params: unknown[] = [f.channelIds, f.userId];
    const p = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    const where = ['channel_id = ANY($1::bigint[])', 'NOT deleted'];
    if (f.text.trim() !== '') where.push(`${FTS_VECTOR} @@ websearch_to_tsquery('simple'::regconfig, ${p(f.text)})`);
    for (const name of f.from) where.push(`lower(author_name) = lower(${p(name)})`);
    for (const t of f.tags) where.push(`${p(t)} = ANY(tags)`);
    if (f.before) where.push(`id < ${p(f.before)}::bigint`);
    if (f.mailbox) where.push('is_private AND (author_id = $2 OR recipient_id = $2)');
    else if (!f.seesPrivate) where.push('(NOT is_private OR author_id = $2 OR recipient_id = $2)');
    const rows = await this.sql.query(
      `SELECT ${MESSAGE_COLS} FROM messages WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ${f.limit + 1}`,
      params,
    );
    return { messages: rows.slice(0, f.limit).map(messageFromRow), more: rows.length > f.limit };
  }

  async listTags(channelId: string, userId: string, seesPrivate: boolean): Promise<string[]> {
    const rows = await this.sql.query<{ tag: string }>(
      `SELECT DISTINCT unnest(tags) AS tag FROM messages
       WHERE channel_id = $1::bigint AND NOT deleted AND ($3 OR NOT is_private OR author_id = $2 OR recipient_id = $2)
       ORDER BY 1`,
      [channelId, userId, seesPrivate],
    );
    return rows.map((r) => r.tag);
  }

  async maxIdMs(): Promise<number> {
    const rows = await this.sql.query<{ m: string }>(
      `SELECT greatest((SELECT coalesce(max(id), 0) FROM messages), (SELECT coalesce(max(id), 0) FROM oneliners))::text AS m`,
    );
    return Number(BigInt(rows[0]?.m ?? '0') >> 19n);
  }

  // ---- oneliners

  async insertOneliner(o: messagesV1.Oneliner, ev: OutboxEntry): Promise<OutboxRow | undefined> {
    const rows = await this.sql.query<{ seq: string }>(
      `WITH ins AS (
         INSERT INTO oneliners (id, author_id, author_name, author_kind, door, text, created_at, client_key)
         VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::timestamptz, $8)
         ON CONFLICT (author_id, client_key) WHERE client_key IS NOT NULL DO NOTHING RETURNING id
       )
       INSERT INTO outbox (subject, payload, ref) SELECT $9, $10, $1 FROM ins RETURNING seq::text AS seq`,
      [
        o.id,
        o.authorId,
        o.authorName,
        o.authorKind,
        o.door,
        o.text,
        o.createdAt!.toISOString(),
        o.clientKey === '' ? null : o.clientKey,
        ev.subject,
        ev.payload,
      ],
    );
    return rows[0] ? { seq: rows[0].seq, subject: ev.subject, payload: ev.payload } : undefined;
  }

  async onelinerByClientKey(authorId: string, clientKey: string): Promise<messagesV1.Oneliner | undefined> {
    const rows = await this.sql.query(
      `SELECT ${ONELINER_COLS} FROM oneliners WHERE author_id = $1 AND client_key = $2`,
      [authorId, clientKey],
    );
    return rows[0] ? onelinerFromRow(rows[0]) : undefined;
  }

  async listOneliners(limit: number): Promise<messagesV1.Oneliner[]> {
    const rows = await this.sql.query(`SELECT ${ONELINER_COLS} FROM oneliners ORDER BY id DESC LIMIT ${limit}`);
    return rows.map(onelinerFromRow).reverse();
  }

  // ---- tests only (see app/test-seed.ts)

  async insertSeeded(m: Message): Promise<void> {
    await this.sql.query(
      `INSERT INTO messages (id, channel_id, author_id, author_name, author_kind, door, text, kind, subject, tags,
         reply_to_id, recipient_id, is_private, attachments, created_at, changed_at, edited, deleted, client_key)
       VALUES ($1::bigint, $2::bigint, $3, $4, $5, $6, $7, $8, $9, $10::text[], $11::bigint, $12, $13, $14::jsonb,
         $15::timestamptz, $16::timestamptz, $17, $18, $19)`,
      [
        m.id,
        m.channelId,
        m.authorId,
        m.authorName,
        m.authorKind,
        m.door,
        m.text,
        m.kind,
        m.subject,
        m.tags,
        m.replyToId === '' ? null : m.replyToId,
        m.recipientId,
        m.isPrivate,
        attachmentsToJson(m.attachments),
        m.createdAt!.toISOString(),
        m.changedAt!.toISOString(),
        m.edited,
        m.deleted,
        m.clientKey === '' ? null : m.clientKey,
      ],
    );
  }
}
