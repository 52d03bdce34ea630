import { Status } from './status';
import type { StatusName } from './status';
import { encodeReply } from './frames';

describe('Status (spec §2.5, acceptance #34)', () => {
  const table: [StatusName, number, string, string][] = [
    ['OK', 200, 'OK', 'Request fulfilled, document follows'],
    ['CREATED', 201, 'Created', 'Document created, URL follows'],
    ['PARTIAL_CONTENT', 206, 'Partial Content', 'Partial content follows'],
    ['BAD_REQUEST', 400, 'Bad Request', 'Bad request syntax or unsupported method'],
    ['UNAUTHORIZED', 401, 'Unauthorized', 'No permission -- see authorization schemes'],
    ['FORBIDDEN', 403, 'Forbidden', 'Request forbidden -- authorization will not help'],
    ['NOT_FOUND', 404, 'Not Found', 'Nothing matches the given URI'],
    ['METHOD_NOT_ALLOWED', 405, 'Method Not Allowed', 'Specified method is invalid for this resource'],
    ['CONFLICT', 409, 'Conflict', 'Request conflict'],
    ['UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported Media Type', 'Entity body in unsupported format'],
    [
      'TOO_MANY_REQUESTS',
      429,
      'Too Many Requests',
      'The user has sent too many requests in a given amount of time ("rate limiting")',
    ],
    ['INTERNAL_SERVER_ERROR', 500, 'Internal Server Error', 'Server got itself in trouble'],
    ['SERVICE_UNAVAILABLE', 503, 'Service Unavailable', 'The server cannot process the request due to a high load'],
    ['VERSION_NOT_SUPPORTED', 505, 'Version Not Supported', 'Cannot fulfill request'],
    ['UNKNOWN_ERROR', 520, 'Unknown Error', 'Full description: Unknown Error'],
  ];
  it('is exactly the closed set of §2.5', () => {
    expect(Object.keys(Status).sort()).toEqual(table.map((r) => r[0]).sort());
  });
  it.each(table)('%s → %d %s with its default detail', (name, code, status, detail) => {
    expect(Status[name]).toEqual({ code, status, detail });
    const frame = encodeReply({ type: 'x', status: name, data: null, time: 1 });
    expect(JSON.parse(frame)).toEqual({
      type: 'x',
      jsonapi: { version: '1.0', revision: '17' },
      meta: null,
      data: null,
      errors: { detail, code, status, time: 1 },
    });
  });
});
