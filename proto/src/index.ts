/**
 * @hubbub/proto: generated contract types (gen/, do not edit) and the NATS subjects that carry them.
 * Each domain is exported as a namespace: `import { identityV1 } from '@hubbub/proto'`.
 */
import './text-encoding';

export {
  HealthCheckRequest,
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthClient,
  HealthService,
} from '../gen/grpc/health/v1/health';
export { ChatEvent, UserEvent, isSubjectToken, subjects } from './subjects';
export type { Subjects } from './subjects';
export { postedAsSent, storedAsSent } from './posted';
export * as identityV1 from '../gen/hubbub/identity/v1/identity';
export * as messagesV1 from '../gen/hubbub/messages/v1/messages';
