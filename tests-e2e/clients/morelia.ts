/**
 * A black-box Morelia MTP 1.0 client for end-to-end tests and benchmarks, written from
 * ../shared/specs/ws-messenger.md §2: one request at a time per call (replies come in request
 * order), `update` push frames collected separately.
 */
import WebSocket from 'ws';

export interface MtpMessage {
  uuid: string;
  text: string | null;
  from_user: string | null;
  time: number | null;
  from_flow: string | null;
  edited_time: number | null;
  edited_status: boolean | null;
  client_id: number | null;
  [k: string]: unknown;
}
export interface MtpFlow {
  uuid: string;
  title: string | null;
  type: string | null;
  [k: string]: unknown;
}
export interface MtpReply {
  type: string;
  data: { time: number; user: unknown[] | null; flow: MtpFlow[] | null; message: MtpMessage[] | null } | null;
  errors: { detail: string; code: number; status: string; time: number };
}

export class MoreliaClient {
  readonly updates: MtpReply[] = [];
  readonly pushedMessages: MtpMessage[] = [];
  private pending: ((r: MtpReply) => void)[] = [];
  uuid = '';
  authId = '';
  closed = false;
  onPush?: (m: MtpMessage) => void;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const r = JSON.parse(data.toString()) as MtpReply;
      if (r.type === 'update') {
        this.updates.push(r);
        for (const m of r.data?.message ?? []) {
          this.pushedMessages.push(m);
          this.onPush?.(m);
        }
        return;
      }
      this.pending.shift()?.(r);
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => (this.closed = true));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<MoreliaClient> {
    const ws = new WebSocket(`ws://${host}:${port}/ws`, { perMessageDeflate: false });
    await new Promise<void>((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
    });
    return new MoreliaClient(ws);
  }

  request(type: string, data: Record<string, unknown>, timeoutMs = 10_000): Promise<MtpReply> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to ${type} within ${timeoutMs} ms`)), timeoutMs);
      this.pending.push((r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.ws.send(JSON.stringify({ type, data, jsonapi: { version: '1.0', revision: '17' } }));
    });
  }

  private me(): Record<string, unknown> {
    return { uuid: this.uuid, auth_id: this.authId };
  }

  async register(login: string, password: string): Promise<void> {
    const r = await this.request('register_user', { user: [{ login, password, username: login }] });
    if (r.errors.code !== 201) throw new Error(`register_user ${login}: ${r.errors.code} ${r.errors.detail}`);
    const u = r.data!.user![0] as { uuid: string; auth_id: string };
    this.uuid = u.uuid;
    this.authId = u.auth_id;
  }

  async login(login: string, password: string): Promise<void> {
    const r = await this.request('authentication', { user: [{ login, password }] });
    if (r.errors.code !== 200) throw new Error(`authentication ${login}: ${r.errors.code} ${r.errors.detail}`);
    const u = r.data!.user![0] as { uuid: string; auth_id: string };
    this.uuid = u.uuid;
    this.authId = u.auth_id;
  }

  async allFlow(): Promise<MtpFlow[]> {
    const r = await this.request('all_flow', { user: [this.me()] });
    return r.data?.flow ?? [];
  }

  async flowByTitle(title: string): Promise<MtpFlow> {
    const f = (await this.allFlow()).find((x) => x.title === title);
    if (!f) throw new Error(`flow ${title} not visible`);
    return f;
  }

  async subscribe(): Promise<MtpReply> {
    return this.request('subscribe', { user: [this.me()] });
  }

  async sendMessage(flow: string, text: string, clientId?: number): Promise<MtpReply> {
    return this.request('send_message', {
      user: [this.me()],
      flow: [{ uuid: flow }],
      message: [{ text, ...(clientId === undefined ? {} : { client_id: clientId }) }],
    });
  }

  async editMessage(uuid: string, text: string): Promise<MtpReply> {
    return this.request('edited_message', { user: [this.me()], message: [{ uuid, text }] });
  }

  async deleteMessage(uuid: string): Promise<MtpReply> {
    return this.request('delete_message', { user: [this.me()], message: [{ uuid }] });
  }

  async getUpdate(time: number): Promise<MtpReply> {
    return this.request('get_update', { user: [this.me()], time });
  }

  async allMessages(flow: string): Promise<MtpReply> {
    return this.request('all_messages', { user: [this.me()], flow: [{ uuid: flow }] });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
      setTimeout(() => this.ws.terminate(), 1_000).unref();
    });
  }
}
