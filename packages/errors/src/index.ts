export { AppError, Code, codeName, errors, isAppError, isCode } from './app-error';
export type { AppErrorOptions, CodeName } from './app-error';
export {
  DETAIL_TRAILER_PREFIX,
  REASON_TRAILER,
  fromGrpcStatus,
  toGrpcStatus,
  toNatsServiceHeaders,
} from './grpc-status';
export type { GrpcStatusLike } from './grpc-status';
