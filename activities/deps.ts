import { ArtifactStore } from '../lib/artifacts';
import { loadConfig, type RecflowConfig } from '../lib/config';

/** What activity factories receive: configuration and stores, real in production, real or fake in tests. */
export interface ActivityDeps {
  config: RecflowConfig;
  store: ArtifactStore;
}

/** Dependencies from the environment's configuration. */
export function defaultDeps(config: RecflowConfig = loadConfig()): ActivityDeps {
  return { config, store: new ArtifactStore(config.artifactsDir) };
}
