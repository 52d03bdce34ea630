/** Real service processes for the end-to-end tests: one implementation, in @hubbub/testing. */
export { ServiceProcess, freePort, repoRoot } from '@hubbub/testing';
