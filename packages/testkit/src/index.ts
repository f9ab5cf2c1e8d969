export {
  debianPackageFor,
  type FindBinaryOptions,
  findBinary,
  postgresBinDirs,
} from './binaries.js';
export { type CertificateRequest, makeCertificates } from './certificates.js';
export { MissingBinaryError, ServerStartError } from './errors.js';
export { type NatsServer, type NatsServerOptions, startNatsServer } from './nats.js';
export {
  type NatsCluster,
  type NatsClusterOptions,
  routeCount,
  startNatsCluster,
} from './nats-cluster.js';
export { freePort, RESERVED_PORTS } from './ports.js';
export { type Postgres, type PostgresOptions, startPostgres } from './postgres.js';
export { trackedCount } from './registry.js';
export { leaderKnown, waitFor, whileLeaderMoves } from './wait.js';
